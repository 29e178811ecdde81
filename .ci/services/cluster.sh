# A loopback ClickHouse cluster for the cluster tests (sourced by .ci/run; also run as
# `bash .ci/services/cluster.sh kill-node N | start-node N | stop`).
# One ZooKeeper 3.8 + 4 clickhouse-server 18.16 processes on 127.0.0.1: 2 shards x 2
# replicas, each process with its own folder under $CLUSTER_HOME. Idempotent: reuses a
# cluster that answers. Exports RTP_TEST_CLUSTER_URL (node 1), RTP_TEST_CLUSTER_NAME and
# RTP_TEST_CLUSTER_HOME. Facts and 18.16's quirks: docs/deploy.md, "Deploying to a cluster".
#
# Ports for base B (default 12180; keep clear of 19000/19092): ZooKeeper B; node N (1..4)
# native B+N, http B+10+N, interserver B+20+N. Nodes 1/2 = shard 01 replicas s1_r1/s1_r2,
# nodes 3/4 = shard 02 replicas s2_r1/s2_r2.
# Clusters on every node: rtp_cluster (2x2, internal_replication) and rtp_cluster_flat (4x1).
CLUSTER_BASE_PORT="${CLUSTER_BASE_PORT:-12180}"
CLUSTER_HOME="${CLUSTER_HOME:-${TMPDIR:-/tmp}/rtp-cluster}"
CLUSTER_NAME=rtp_cluster

_cl_ping() { # node number: answers a query that needs its ZooKeeper session
  clickhouse-client --host 127.0.0.1 --port "$((CLUSTER_BASE_PORT + $1))" \
    -q "SELECT count() FROM system.zookeeper WHERE path = '/'" >/dev/null 2>&1
}

_cl_alive() { # pid: running and not a zombie (a killed orphan stays one for a while)
  local st
  st=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) || return 1
  [ -n "$st" ] && [ "$st" != Z ]
}

_cl_zk_ready() {
  ( exec 3<>"/dev/tcp/127.0.0.1/$CLUSTER_BASE_PORT" || exit 1; printf srvr >&3
    timeout 2 cat <&3 ) 2>/dev/null | grep -q '^Mode: standalone'
}

_cl_write_zk() {
  local d="$CLUSTER_HOME/zk"
  mkdir -p "$d/data" "$d/log"
  cat > "$d/zoo.cfg" <<EOF
tickTime=2000
initLimit=10
syncLimit=5
dataDir=$d/data
clientPort=$CLUSTER_BASE_PORT
clientPortAddress=127.0.0.1
maxClientCnxns=0
admin.enableServer=false
4lw.commands.whitelist=ruok,srvr,stat
preAllocSize=4096
forceSync=no
EOF
  cat > "$d/log4j.properties" <<EOF
log4j.rootLogger=WARN, FILE
log4j.appender.FILE=org.apache.log4j.FileAppender
log4j.appender.FILE.File=$d/log/zookeeper.log
log4j.appender.FILE.layout=org.apache.log4j.PatternLayout
log4j.appender.FILE.layout.ConversionPattern=%d{ISO8601} %-5p %m%n
EOF
}

_cl_start_zk() {
  local d="$CLUSTER_HOME/zk"
  _cl_zk_ready && return 0
  # the JVM directly: zkServer.sh sources /etc/zookeeper's environment (logs under /var)
  (cd "$d" || exit 1; nohup java -Xms16m -Xmx128m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 \
    -XX:-UsePerfData -Djava.net.preferIPv4Stack=true "-Dlog4j.configuration=file:$d/log4j.properties" \
    -cp /usr/share/java/zookeeper.jar:/usr/share/java/slf4j-log4j12.jar:/usr/share/java/log4j-1.2.jar \
    org.apache.zookeeper.server.ZooKeeperServerMain "$d/zoo.cfg" >"$d/log/stdout.log" 2>&1 </dev/null &
    echo $! >"$d/pid")
  for _ in $(seq 1 300); do _cl_zk_ready && return 0; sleep 0.1; done
  echo "zookeeper did not start; see $d/log" >&2
  return 1
}

_cl_write_node() { # node number
  local n=$1 b=$CLUSTER_BASE_PORT d="$CLUSTER_HOME/ch$1"
  local shard=$(((n + 1) / 2)) rep=$(((n - 1) % 2 + 1)) s r replicas="" flat=""
  mkdir -p "$d/data" "$d/log" "$d/config.d" "$d/users.d"
  sed -e "s#/var/lib/clickhouse/#$d/data/#g" -e "s#/var/log/clickhouse-server/#$d/log/#g" \
      -e "s#<http_port>[0-9]*</http_port>#<http_port>$((b + 10 + n))</http_port>#" \
      -e "s#<tcp_port>[0-9]*</tcp_port>#<tcp_port>$((b + n))</tcp_port>#" \
      -e "s#<interserver_http_port>[0-9]*</interserver_http_port>#<interserver_http_port>$((b + 20 + n))</interserver_http_port>#" \
      -e '/<listen_host>::1<\/listen_host>/d' /etc/clickhouse-server/config.xml >"$d/config.xml"
  cp /etc/clickhouse-server/users.xml "$d/users.xml"
  if grep -qE '/var/lib/clickhouse|/var/log/clickhouse-server' "$d/config.xml"; then
    echo "cluster.sh: system paths left in $d/config.xml" >&2
    return 1
  fi
  for s in 1 2; do
    replicas+="<shard><internal_replication>true</internal_replication>"
    for r in 1 2; do
      replicas+="<replica><host>127.0.0.1</host><port>$((b + 2 * s + r - 2))</port></replica>"
      flat+="<shard><replica><host>127.0.0.1</host><port>$((b + 2 * s + r - 2))</port></replica></shard>"
    done
    replicas+="</shard>"
  done
  # a local substitutions file, so that a system-wide /etc/metrika.xml never leaks in
  printf '<yandex><networks><ip>127.0.0.1</ip><ip>::1</ip></networks><clickhouse_compression/></yandex>\n' \
    >"$d/metrika.xml"
  cat >"$d/config.d/cluster.xml" <<EOF
<yandex>
  <include_from>$d/metrika.xml</include_from>
  <listen_host>127.0.0.1</listen_host>
  <interserver_http_host>127.0.0.1</interserver_http_host>
  <logger><level>warning</level></logger>
  <mark_cache_size>67108864</mark_cache_size>
  <uncompressed_cache_size>67108864</uncompressed_cache_size>
  <max_concurrent_queries>50</max_concurrent_queries>
  <zookeeper replace="replace">
    <node><host>127.0.0.1</host><port>$b</port></node>
    <session_timeout_ms>10000</session_timeout_ms>
  </zookeeper>
  <remote_servers replace="replace">
    <$CLUSTER_NAME>$replicas</$CLUSTER_NAME>
    <${CLUSTER_NAME}_flat>$flat</${CLUSTER_NAME}_flat>
  </remote_servers>
  <macros replace="replace">
    <cluster>$CLUSTER_NAME</cluster><shard>0$shard</shard><replica>s${shard}_r${rep}</replica>
  </macros>
  <distributed_ddl replace="replace"><path>/clickhouse/task_queue/ddl</path></distributed_ddl>
</yandex>
EOF
  # in 18.16 the pool sizes are profile settings, read at start; ON CLUSTER statements
  # run with the default profile's settings, not the query's (LowCardinality needs one)
  cat >"$d/users.d/light.xml" <<EOF
<yandex>
  <include_from>$d/metrika.xml</include_from>
  <profiles><default>
    <allow_experimental_low_cardinality_type>1</allow_experimental_low_cardinality_type>
    <background_pool_size>4</background_pool_size>
    <background_schedule_pool_size>4</background_schedule_pool_size>
    <max_threads>2</max_threads>
    <max_memory_usage>2000000000</max_memory_usage>
    <distributed_ddl_task_timeout>60</distributed_ddl_task_timeout>
  </default></profiles>
</yandex>
EOF
}

_cl_launch_node() { # node number; does not wait
  local d="$CLUSTER_HOME/ch$1" server
  server="$(command -v clickhouse-server || echo /usr/sbin/clickhouse-server)"
  (cd "$d" || exit 1; nohup "$server" "--config-file=$d/config.xml" >"$d/log/stdout.log" 2>&1 </dev/null &
    echo $! >"$d/pid")
}

_cl_wait_node() { # node number
  local n=$1
  for _ in $(seq 1 300); do _cl_ping "$n" && return 0; sleep 0.1; done
  echo "cluster node $n did not answer; see $CLUSTER_HOME/ch$n/log" >&2
  return 1
}

rtp_cluster_kill_node() { # node number: kill -9, and wait until it is gone
  local pid
  pid=$(cat "$CLUSTER_HOME/ch$1/pid" 2>/dev/null) || return 1
  kill -KILL "$pid" 2>/dev/null || true
  while _cl_alive "$pid"; do sleep 0.05; done
}

rtp_cluster_start_node() { # node number: start it (if it is down) and wait until it answers
  # After a kill -9 a replica may hold a part ZooKeeper never recorded; 18.16 then refuses
  # to start when that part is most of a small table ("doesn't look like the set of parts
  # in ZooKeeper"). The flag makes it restore from ZooKeeper (the stray part is detached),
  # what an operator does after such a crash.
  _cl_ping "$1" || {
    mkdir -p "$CLUSTER_HOME/ch$1/data/flags" && touch "$CLUSTER_HOME/ch$1/data/flags/force_restore_data"
    _cl_launch_node "$1"
    _cl_wait_node "$1"
  }
}

rtp_cluster_stop() { # SIGKILL every process of the cluster (a throwaway test cluster)
  local f
  for f in "$CLUSTER_HOME"/ch?/pid "$CLUSTER_HOME"/zk/pid; do
    [ -f "$f" ] && kill -KILL "$(cat "$f")" 2>/dev/null
  done
  return 0
}

rtp_cluster_start() {
  local n up=1
  for n in 1 2 3 4; do _cl_ping "$n" || up=""; done
  if [ -z "$up" ]; then
    command -v java >/dev/null && [ -f /usr/share/java/zookeeper.jar ] || apt_install zookeeper
    mkdir -p "$CLUSTER_HOME"
    _cl_write_zk
    _cl_start_zk || return 1
    for n in 1 2 3 4; do
      _cl_ping "$n" && continue
      _cl_write_node "$n" || return 1
      _cl_launch_node "$n"
    done
    for n in 1 2 3 4; do _cl_wait_node "$n" || return 1; done
  fi
  export RTP_TEST_CLUSTER_URL="clickhouse://default@127.0.0.1:$((CLUSTER_BASE_PORT + 1))/rtp_test"
  export RTP_TEST_CLUSTER_NAME="$CLUSTER_NAME"
  export RTP_TEST_CLUSTER_HOME="$CLUSTER_HOME"
  echo "ClickHouse cluster $CLUSTER_NAME (2 shards x 2 replicas) on 127.0.0.1:$((CLUSTER_BASE_PORT + 1))-$((CLUSTER_BASE_PORT + 4)) (RTP_TEST_CLUSTER_URL=$RTP_TEST_CLUSTER_URL)"
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then # run, not sourced: one command
  set -euo pipefail
  case "${1:-}" in
    start) rtp_cluster_start ;;
    kill-node) rtp_cluster_kill_node "$2" ;;
    start-node) rtp_cluster_start_node "$2" ;;
    stop) rtp_cluster_stop ;;
    *) echo "usage: $0 start | kill-node N | start-node N | stop" >&2; exit 2 ;;
  esac
else
  command -v clickhouse-server >/dev/null || [ -x /usr/sbin/clickhouse-server ] \
    || apt_install clickhouse-server clickhouse-client
  rtp_cluster_start || { return 1 2>/dev/null || exit 1; }
fi
