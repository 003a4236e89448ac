# Sourced by scripts/test and scripts/bench: install PostgreSQL from Debian packages when it is
# missing, start a throwaway cluster on 127.0.0.1, and stop it when the calling script exits.
# Exports PG_URL (postgresql+asyncpg://postgres@127.0.0.1:PORT/postgres).

pg_bindir() {
    local dir
    dir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
    [ -n "$dir" ] && [ -x "$dir/initdb" ] && echo "$dir"
}

ensure_postgres_installed() {
    if [ -z "$(pg_bindir)" ]; then
        echo "==> installing PostgreSQL from Debian packages"
        local sudo=""
        [ "$(id -u)" -eq 0 ] || sudo="sudo"
        $sudo apt-get update -qq
        DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq postgresql >/dev/null
    fi
}

start_throwaway_postgres() {
    ensure_postgres_installed
    local bindir run_as=()
    bindir=$(pg_bindir)
    PG_DIR=$(mktemp -d /tmp/sendgrid-source-pg.XXXXXX)
    # PostgreSQL refuses to run as root: the cluster belongs to the postgres user.
    if [ "$(id -u)" -eq 0 ]; then
        chown postgres:postgres "$PG_DIR"
        run_as=(runuser -u postgres --)
    fi
    PG_PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    "${run_as[@]}" "$bindir/initdb" --no-sync -A trust -U postgres -D "$PG_DIR/data" >/dev/null
    "${run_as[@]}" "$bindir/pg_ctl" -w -D "$PG_DIR/data" -l "$PG_DIR/log" \
        -o "-h 127.0.0.1 -p $PG_PORT -k $PG_DIR -c fsync=off -c full_page_writes=off -c max_connections=200" \
        start >/dev/null
    PG_STOP=("${run_as[@]}" "$bindir/pg_ctl" -w -D "$PG_DIR/data" -m immediate stop)
    PG_CTL=("${run_as[@]}" "$bindir/pg_ctl" -D "$PG_DIR/data")
    export PG_URL="postgresql+asyncpg://postgres@127.0.0.1:$PG_PORT/postgres"
    export PG_DIR PG_PORT
    trap stop_throwaway_postgres EXIT
}

stop_throwaway_postgres() {
    if [ -n "${PG_DIR:-}" ]; then
        "${PG_STOP[@]}" >/dev/null 2>&1 || true
        rm -rf "$PG_DIR"
        PG_DIR=""
    fi
}
