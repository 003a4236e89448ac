# Sourced by scripts/test: install HAProxy from Debian packages when it is missing, so the
# tests can check the load balancer's configuration of docker-compose.yml with `haproxy -c`
# (nothing is started). Exports HAPROXY_UNAVAILABLE (why not) when it cannot be installed.

ensure_haproxy_installed() {
    export HAPROXY_UNAVAILABLE=""
    if command -v haproxy >/dev/null 2>&1; then
        return 0
    fi
    echo "==> installing HAProxy from Debian packages"
    local sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    if ! { $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq haproxy >/dev/null; }; then
        HAPROXY_UNAVAILABLE="haproxy is not installed and apt-get could not install it"
        echo "==> HAProxy unavailable: $HAPROXY_UNAVAILABLE" >&2
    fi
}
