# ClickHouse server for the server-backend tests (sourced by .ci/run).
# Installs Debian's clickhouse-server if missing, runs it as a plain background process on
# 127.0.0.1 with its own copy of the config (data, logs and ports in a temp folder), waits
# until it answers and exports RTP_TEST_CLICKHOUSE_URL. Idempotent: reuses a running one.
CH_TCP_PORT="${CH_TCP_PORT:-19000}"
CH_HTTP_PORT="${CH_HTTP_PORT:-18123}"
CH_HOME="${CH_HOME:-${TMPDIR:-/tmp}/rtp-clickhouse}"

apt_install clickhouse-server clickhouse-client
CH_BIN="$(command -v clickhouse-server || echo /usr/sbin/clickhouse-server)"

_ch_ping() {
  python3 - "$CH_TCP_PORT" <<'PY' >/dev/null 2>&1
import sys
from clickhouse_driver import Client
Client("127.0.0.1", port=int(sys.argv[1]), connect_timeout=1).execute("SELECT 1")
PY
}

if ! _ch_ping; then
  mkdir -p "$CH_HOME/data" "$CH_HOME/log"
  cp /etc/clickhouse-server/users.xml "$CH_HOME/users.xml"
  # rtp's least-privilege users (docs/serve.md, "Running against a ClickHouse server"),
  # merged into users.xml by the server from the users.d folder next to it
  mkdir -p "$CH_HOME/users.d"
  cat > "$CH_HOME/users.d/rtp.xml" <<'XML'
<yandex>
  <profiles>
    <!-- rtp serve: reads and ingests; no DDL; limits rtp can tighten per query -->
    <rtp_serve>
      <allow_ddl>0</allow_ddl>
      <max_execution_time>60</max_execution_time>
      <max_memory_usage>4294967296</max_memory_usage>
    </rtp_serve>
  </profiles>
  <users>
    <rtp_server>
      <password>rtp_server</password>
      <networks><ip>127.0.0.1</ip><ip>::1</ip></networks>
      <profile>rtp_serve</profile>
      <quota>default</quota>
    </rtp_server>
  </users>
</yandex>
XML
  sed -e "s#<path>/var/lib/clickhouse/</path>#<path>$CH_HOME/data/</path>#" \
      -e "s#<tmp_path>/var/lib/clickhouse/tmp/</tmp_path>#<tmp_path>$CH_HOME/data/tmp/</tmp_path>#" \
      -e "s#<user_files_path>[^<]*</user_files_path>#<user_files_path>$CH_HOME/data/user_files/</user_files_path>#" \
      -e "s#<format_schema_path>[^<]*</format_schema_path>#<format_schema_path>$CH_HOME/data/format_schemas/</format_schema_path>#" \
      -e "s#<log>[^<]*</log>#<log>$CH_HOME/log/server.log</log>#" \
      -e "s#<errorlog>[^<]*</errorlog>#<errorlog>$CH_HOME/log/server.err.log</errorlog>#" \
      -e "s#<http_port>8123</http_port>#<http_port>$CH_HTTP_PORT</http_port>#" \
      -e "s#<tcp_port>9000</tcp_port>#<tcp_port>$CH_TCP_PORT</tcp_port>#" \
      -e "s#<interserver_http_port>9009</interserver_http_port>#<interserver_http_port>$((CH_TCP_PORT + 9))</interserver_http_port>#" \
      -e "s#<listen_host>::1</listen_host>##" \
      /etc/clickhouse-server/config.xml > "$CH_HOME/config.xml"
  (cd "$CH_HOME" && nohup "$CH_BIN" --config-file="$CH_HOME/config.xml" \
      >"$CH_HOME/log/stdout.log" 2>&1 &)
  for _ in $(seq 1 60); do
    _ch_ping && break
    sleep 0.5
  done
  if ! _ch_ping; then
    echo "clickhouse-server did not start; last log lines:" >&2
    tail -n 20 "$CH_HOME/log/server.err.log" "$CH_HOME/log/stdout.log" >&2 || true
    return 1 2>/dev/null || exit 1
  fi
fi
export RTP_TEST_CLICKHOUSE_URL="clickhouse://default@127.0.0.1:${CH_TCP_PORT}/rtp_test"
export RTP_TEST_CLICKHOUSE_SERVE_URL="clickhouse://rtp_server:rtp_server@127.0.0.1:${CH_TCP_PORT}/rtp_test"
echo "clickhouse-server on 127.0.0.1:${CH_TCP_PORT} (RTP_TEST_CLICKHOUSE_URL=$RTP_TEST_CLICKHOUSE_URL)"
