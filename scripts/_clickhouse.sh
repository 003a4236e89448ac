# Sourced by scripts/test: install ClickHouse from Debian packages when it is missing, start
# throwaway servers on 127.0.0.1 as plain processes (free ports, their own config and data in
# one temp dir), and stop them when the calling script exits:
# - one server on its own: exports CH_URL (clickhouse://127.0.0.1:PORT/default, the native
#   protocol's port) when it answered, CH_UNAVAILABLE (why not) otherwise;
# - a cluster of two shards, one server each, named `sendgrid_shards` in both servers'
#   <remote_servers>: exports CH_CLUSTER_URL (the first shard's, ?cluster=sendgrid_shards) and
#   CH_CLUSTER_SHARDS (the shards' directories, each with config.xml and the server's pid in
#   `pid`, so a test can stop a shard and start it again), or CH_CLUSTER_UNAVAILABLE.
# No ZooKeeper: the product creates a cluster's tables on each shard itself (ON CLUSTER would
# need it).

CH_CLUSTER_NAME=sendgrid_shards

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

# The one place a server's configuration is written, for the single server and each shard:
# _clickhouse_server_config DIR TCP_PORT HTTP_PORT [REMOTE_SERVERS_XML]
_clickhouse_server_config() {
    local dir=$1 tcp_port=$2 http_port=$3 remote_servers=${4:-}
    local inter_port
    inter_port=$(_free_port)
    mkdir -p "$dir/data" "$dir/tmp" "$dir/user_files" "$dir/log"
    echo "$http_port" >"$dir/http_port"
    # The root element is <yandex> on Debian's 18.16 (newer releases accept it too).
    cat >"$dir/config.xml" <<EOF
<yandex>
  <logger><level>warning</level><log>$dir/log/server.log</log><errorlog>$dir/log/server.err.log</errorlog></logger>
  <listen_host>127.0.0.1</listen_host>
  <tcp_port>$tcp_port</tcp_port>
  <http_port>$http_port</http_port>
  <interserver_http_port>$inter_port</interserver_http_port>
  <interserver_http_host>127.0.0.1</interserver_http_host>
  <path>$dir/data/</path>
  <tmp_path>$dir/tmp/</tmp_path>
  <user_files_path>$dir/user_files/</user_files_path>
  <users_config>$CH_DIR/users.xml</users_config>
  <default_profile>default</default_profile>
  <default_database>default</default_database>
  <timezone>UTC</timezone>
  <mark_cache_size>67108864</mark_cache_size>
  <uncompressed_cache_size>67108864</uncompressed_cache_size>
  $remote_servers
</yandex>
EOF
}

_clickhouse_users_config() {
    cat >"$CH_DIR/users.xml" <<EOF
<yandex>
  <profiles><default></default></profiles>
  <users><default><password></password><networks><ip>127.0.0.1</ip></networks>
    <profile>default</profile><quota>default</quota></default></users>
  <quotas><default></default></quotas>
</yandex>
EOF
}

# Start the server configured in DIR; its pid goes to DIR/pid (read again when stopping, so a
# test that restarted the server writes the new one there).
_start_clickhouse_server() {
    local dir=$1
    # A simple command, so $! is the server itself (not a subshell) and stopping it by PID works.
    clickhouse-server --config-file="$dir/config.xml" >>"$dir/log/stdout" 2>&1 &
    echo $! >"$dir/pid"
}

# Wait until the server in DIR answers /ping (10 s at most); on failure, print why.
_wait_for_clickhouse_server() {
    local dir=$1 http_port pid i
    http_port=$(cat "$dir/http_port")
    pid=$(cat "$dir/pid")
    for i in $(seq 1 100); do
        if python3 -c "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:$http_port/ping', timeout=1).read() != b'Ok.\n')" 2>/dev/null; then
            return 0
        fi
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    echo "clickhouse-server ($(basename "$dir")) did not answer /ping within 10 s: $(tail -n 3 "$dir/log/server.err.log" "$dir/log/stdout" 2>/dev/null | tr '\n' ' ')"
    return 1
}

_clickhouse_dir() {
    if [ -z "${CH_DIR:-}" ]; then
        CH_DIR=$(mktemp -d /tmp/sendgrid-source-ch.XXXXXX)
        export CH_DIR
        _clickhouse_users_config
        trap stop_throwaway_clickhouse_and_postgres EXIT
    fi
}

_clickhouse_installed() {
    if ! ensure_clickhouse_installed >&2 || ! command -v clickhouse-server >/dev/null 2>&1; then
        echo "clickhouse-server is not installed and apt-get could not install it"
        return 1
    fi
}

start_throwaway_clickhouse() {
    unset CH_URL
    export CH_UNAVAILABLE=""
    if ! CH_UNAVAILABLE=$(_clickhouse_installed); then
        echo "==> ClickHouse unavailable: $CH_UNAVAILABLE" >&2
        return 0
    fi
    _clickhouse_dir
    local dir="$CH_DIR/single" tcp_port
    tcp_port=$(_free_port)
    _clickhouse_server_config "$dir" "$tcp_port" "$(_free_port)"
    _start_clickhouse_server "$dir"
    if CH_UNAVAILABLE=$(_wait_for_clickhouse_server "$dir"); then
        export CH_URL="clickhouse://127.0.0.1:$tcp_port/default"
    else
        echo "==> ClickHouse unavailable: $CH_UNAVAILABLE" >&2
    fi
}

start_throwaway_clickhouse_cluster() {
    unset CH_CLUSTER_URL CH_CLUSTER_SHARDS
    export CH_CLUSTER_UNAVAILABLE=""
    if ! CH_CLUSTER_UNAVAILABLE=$(_clickhouse_installed); then
        echo "==> ClickHouse cluster unavailable: $CH_CLUSTER_UNAVAILABLE" >&2
        return 0
    fi
    _clickhouse_dir
    local tcp1 tcp2 shards dir why
    tcp1=$(_free_port)
    tcp2=$(_free_port)
    # Both servers know the cluster, so either can take queries and inserts.
    shards="<remote_servers><$CH_CLUSTER_NAME>"
    shards+="<shard><replica><host>127.0.0.1</host><port>$tcp1</port></replica></shard>"
    shards+="<shard><replica><host>127.0.0.1</host><port>$tcp2</port></replica></shard>"
    shards+="</$CH_CLUSTER_NAME></remote_servers>"
    _clickhouse_server_config "$CH_DIR/shard1" "$tcp1" "$(_free_port)" "$shards"
    _clickhouse_server_config "$CH_DIR/shard2" "$tcp2" "$(_free_port)" "$shards"
    _start_clickhouse_server "$CH_DIR/shard1"
    _start_clickhouse_server "$CH_DIR/shard2"
    for dir in "$CH_DIR/shard1" "$CH_DIR/shard2"; do
        if ! why=$(_wait_for_clickhouse_server "$dir"); then
            CH_CLUSTER_UNAVAILABLE="$why"
            echo "==> ClickHouse cluster unavailable: $CH_CLUSTER_UNAVAILABLE" >&2
            return 0
        fi
    done
    export CH_CLUSTER_URL="clickhouse://127.0.0.1:$tcp1/default?cluster=$CH_CLUSTER_NAME"
    export CH_CLUSTER_SHARDS="$CH_DIR/shard1 $CH_DIR/shard2"
}

stop_throwaway_clickhouse() {
    if [ -z "${CH_DIR:-}" ]; then
        return 0
    fi
    local pidfile pid i
    for pidfile in "$CH_DIR"/*/pid; do
        [ -f "$pidfile" ] || continue
        pid=$(cat "$pidfile")
        kill "$pid" 2>/dev/null || true
    done
    for pidfile in "$CH_DIR"/*/pid; do
        [ -f "$pidfile" ] || continue
        pid=$(cat "$pidfile")
        for i in $(seq 1 50); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -9 "$pid" 2>/dev/null || true
    done
    rm -rf "$CH_DIR"
    CH_DIR=""
}

# One EXIT trap for both throwaway servers (a second `trap ... EXIT` would replace the first).
stop_throwaway_clickhouse_and_postgres() {
    stop_throwaway_clickhouse
    if declare -F stop_throwaway_postgres >/dev/null; then
        stop_throwaway_postgres
    fi
}
