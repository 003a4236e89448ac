# Sourced by scripts/test: install ClickHouse from Debian packages when it is missing, start a
# throwaway server on 127.0.0.1 (free ports, its own config and data in a temp dir) as a plain
# process, and stop it when the calling script exits.
# Exports CH_URL (clickhouse://127.0.0.1:PORT/default, the native protocol's port) when the
# server answered, and CH_UNAVAILABLE (why not) otherwise, so the tests that need it can say so.

ensure_clickhouse_installed() {
    if ! command -v clickhouse-server >/dev/null 2>&1; then
        echo "==> installing ClickHouse from Debian packages"
        local sudo=""
        [ "$(id -u)" -eq 0 ] || sudo="sudo"
        $sudo apt-get update -qq
        DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq clickhouse-server >/dev/null
    fi
}

_free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

start_throwaway_clickhouse() {
    unset CH_URL
    export CH_UNAVAILABLE=""
    if ! ensure_clickhouse_installed || ! command -v clickhouse-server >/dev/null 2>&1; then
        CH_UNAVAILABLE="clickhouse-server is not installed and apt-get could not install it"
        echo "==> ClickHouse unavailable: $CH_UNAVAILABLE" >&2
        return 0
    fi
    CH_DIR=$(mktemp -d /tmp/sendgrid-source-ch.XXXXXX)
    local tcp_port http_port inter_port
    tcp_port=$(_free_port)
    http_port=$(_free_port)
    inter_port=$(_free_port)
    mkdir -p "$CH_DIR/data" "$CH_DIR/tmp" "$CH_DIR/user_files" "$CH_DIR/log"
    # The root element is <yandex> on Debian's 18.16 (newer releases accept it too).
    cat >"$CH_DIR/config.xml" <<EOF
<yandex>
  <logger><level>warning</level><log>$CH_DIR/log/server.log</log><errorlog>$CH_DIR/log/server.err.log</errorlog></logger>
  <listen_host>127.0.0.1</listen_host>
  <tcp_port>$tcp_port</tcp_port>
  <http_port>$http_port</http_port>
  <interserver_http_port>$inter_port</interserver_http_port>
  <interserver_http_host>127.0.0.1</interserver_http_host>
  <path>$CH_DIR/data/</path>
  <tmp_path>$CH_DIR/tmp/</tmp_path>
  <user_files_path>$CH_DIR/user_files/</user_files_path>
  <users_config>$CH_DIR/users.xml</users_config>
  <default_profile>default</default_profile>
  <default_database>default</default_database>
  <timezone>UTC</timezone>
  <mark_cache_size>67108864</mark_cache_size>
  <uncompressed_cache_size>67108864</uncompressed_cache_size>
</yandex>
EOF
    cat >"$CH_DIR/users.xml" <<EOF
<yandex>
  <profiles><default></default></profiles>
  <users><default><password></password><networks><ip>127.0.0.1</ip></networks>
    <profile>default</profile><quota>default</quota></default></users>
  <quotas><default></default></quotas>
</yandex>
EOF
    # A simple command, so $! is the server itself (not a subshell) and stopping it by PID works.
    clickhouse-server --config-file="$CH_DIR/config.xml" >"$CH_DIR/log/stdout" 2>&1 &
    CH_PID=$!
    export CH_DIR CH_PID
    trap stop_throwaway_clickhouse_and_postgres EXIT
    local i
    for i in $(seq 1 100); do
        if python3 -c "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:$http_port/ping', timeout=1).read() != b'Ok.\n')" 2>/dev/null; then
            export CH_URL="clickhouse://127.0.0.1:$tcp_port/default"
            return 0
        fi
        if ! kill -0 "$CH_PID" 2>/dev/null; then
            break
        fi
        sleep 0.1
    done
    CH_UNAVAILABLE="clickhouse-server did not answer /ping within 10 s: $(tail -n 3 "$CH_DIR/log/server.err.log" "$CH_DIR/log/stdout" 2>/dev/null | tr '\n' ' ')"
    echo "==> ClickHouse unavailable: $CH_UNAVAILABLE" >&2
}

stop_throwaway_clickhouse() {
    if [ -n "${CH_PID:-}" ]; then
        kill "$CH_PID" 2>/dev/null || true
        local i
        for i in $(seq 1 50); do
            kill -0 "$CH_PID" 2>/dev/null || break
            sleep 0.1
        done
        kill -9 "$CH_PID" 2>/dev/null || true
        CH_PID=""
    fi
    if [ -n "${CH_DIR:-}" ]; then
        rm -rf "$CH_DIR"
        CH_DIR=""
    fi
}

# One EXIT trap for both throwaway servers (a second `trap ... EXIT` would replace the first).
stop_throwaway_clickhouse_and_postgres() {
    stop_throwaway_clickhouse
    if declare -F stop_throwaway_postgres >/dev/null; then
        stop_throwaway_postgres
    fi
}
