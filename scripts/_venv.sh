# Sourced by the scripts: create .venv when it is missing and install the project into it.
# $1 is the extras to install ("" or "test").
ensure_venv() {
    local extras="${1:-}" spec="."
    [ -n "$extras" ] && spec=".[$extras]"
    if [ ! -x .venv/bin/python ]; then
        echo "==> creating .venv"
        python3 -m venv .venv
    fi
    # Reinstall only when pyproject.toml changed since the last install.
    local stamp=".venv/.installed-$extras"
    if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
        echo "==> installing sendgrid-source $spec"
        .venv/bin/python -m pip install -q --upgrade pip >/dev/null
        .venv/bin/python -m pip install -q -e "$spec"
        touch "$stamp"
    fi
}
