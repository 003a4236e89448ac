# Sourced by scripts/test: the console's browser tests (tests/console) drive Debian's Chromium
# through Playwright, since no browser build can be downloaded. Installed only when missing.
ensure_chromium_installed() {
    if [ ! -x /usr/bin/chromium ]; then
        echo "==> installing Chromium from Debian packages (the console's browser tests)"
        local sudo=""
        [ "$(id -u)" -eq 0 ] || sudo="sudo"
        $sudo apt-get update -qq
        DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq chromium >/dev/null
    fi
}
