# Sourced by the scripts: create .venv when it is missing and install the project into it.
# $1 is the extras to install ("" or "test").
ensure_venv() {
    local extras="${1:-}" spec="."
    [ -n "$extras" ] && spec=".[$extras]"
    if [ ! -x .venv/bin/python ]; then
        local python="" candidate
        for candidate in python3.13 python3.12 python3.11 python3; do
            if command -v "$candidate" >/dev/null 2>&1 &&
                "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
                python="$candidate"
                break
            fi
        done
        if [ -z "$python" ]; then
            echo "sendgrid-source needs Python 3.11 or newer (python3.11+ on PATH)" >&2
            exit 1
        fi
        echo "==> creating .venv with $python"
        if ! "$python" -m venv .venv; then
            echo "could not create a virtual environment: on Debian/Ubuntu install python3-venv" >&2
            rm -rf .venv
            exit 1
        fi
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
