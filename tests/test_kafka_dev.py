"""`rtp dev` (a subprocess, a real broker) makes its Kafka consumers follow the project's
files: a datasource whose topic changes reads the new topic and no longer the old one,
a datasource added gets a consumer, a datasource whose Kafka source is removed loses it;
the others keep running."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
import uuid

import httpx
import pytest

from rtp.project.tinybird import KAFKA_META_TYPES
from tests.serving import ENV, deploy, free_port, rtp_serve, wait_healthy
from tests.test_kafka_connect import BROKER, create_topic, produce

pytestmark = pytest.mark.skipif(
    not BROKER, reason="RTP_TEST_KAFKA is unset (source .ci/services/kafka.sh for a broker)"
)


def datasource(topic: str, group: str) -> str:
    return (
        "SCHEMA >\n    `n` Int64 `json:$.n`\n\nENGINE MergeTree\nENGINE_SORTING_KEY n\n"
        f"KAFKA_CONNECTION_NAME bus\nKAFKA_TOPIC {topic}\nKAFKA_GROUP_ID {group}\n"
        "KAFKA_AUTO_OFFSET_RESET earliest\n"
    )


def count_rows(base: str, table: str, where: str = "1", headers: dict | None = None) -> int:
    """Rows of ``table`` matching ``where``, through the server's /v0/sql."""
    q = f"SELECT count() AS c FROM {table} WHERE {where} FORMAT JSON"
    r = httpx.get(f"{base}/v0/sql", params={"q": q}, headers=headers, timeout=10)
    assert r.status_code == 200, r.text
    return int(r.json()["data"][0]["c"])


def until(what, proc: subprocess.Popen, timeout: float = 60, context=lambda: ""):
    """``what()``'s first truthy value, polled while ``proc`` runs, within ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = what()
        if value:
            return value
        assert proc.poll() is None, context()
        assert time.monotonic() < deadline, context()
        time.sleep(0.3)


def lag_of(name: str) -> str:
    return f'rtp_kafka_lag{{datasource="{name}"'


class Dev:
    """`rtp dev --no-auth` on a free port, its stdout collected line by line."""

    def __init__(self, root) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "rtp.cli.main", "dev", "-p", str(root)]
            + ["--port", str(self.port), "--no-auth"],
            env={**ENV, "COLUMNS": "300"},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.lines.append(line.rstrip())

    def count(self, table: str, where: str = "1") -> int:
        return count_rows(self.base, table, where)

    def until(self, what, timeout: float = 60):
        return until(what, self.proc, timeout, lambda: "\n".join(self.lines))

    def said(self, text: str) -> bool:
        return any(text in line for line in self.lines)


def test_reloads_restart_the_consumers_they_change(project_factory):
    tag = uuid.uuid4().hex[:8]
    a, b, c = (f"dev_{x}_{tag}" for x in "abc")
    for topic in (a, b, c):
        create_topic(topic, 1)
    root = project_factory(
        {
            "connections/bus.connection": f"TYPE kafka\nKAFKA_BOOTSTRAP_SERVERS {BROKER}\n",
            "datasources/clicks.datasource": datasource(a, f"g_{tag}"),
        },
        base={"rtp.yaml": "name: kafkadev\n"},
    )
    produce(a, [{"n": i} for i in range(5)], 1)
    dev = Dev(root)
    try:
        wait_healthy(dev.base, dev.proc, 60)
        dev.until(lambda: dev.count("clicks") == 5)

        # the topic changes: the consumer restarts on the new topic, the old one is left
        (root / "datasources/clicks.datasource").write_text(datasource(b, f"g_{tag}"))
        dev.until(lambda: dev.said("Kafka consumers restarted: clicks"))
        produce(b, [{"n": 100 + i} for i in range(7)], 1)
        produce(a, [{"n": 50 + i} for i in range(3)], 1)
        dev.until(lambda: dev.count("clicks") >= 12)
        time.sleep(3)
        assert dev.count("clicks") == 12
        assert (
            dev.count("clicks", "n >= 100") == 7 and dev.count("clicks", "n >= 50 AND n < 100") == 0
        )

        # a datasource added: its consumer starts
        (root / "datasources/views.datasource").write_text(datasource(c, f"h_{tag}"))
        dev.until(lambda: dev.said("Kafka consumers started: views"))
        produce(c, [{"n": i} for i in range(4)], 1)
        dev.until(lambda: dev.count("views") == 4)
        dev.until(lambda: lag_of("views") in httpx.get(f"{dev.base}/metrics").text)

        # its Kafka source removed, its columns kept (Tinybird's meta columns were added
        # to the Kafka datasource; dropping them needs --allow-destructive, which rtp dev
        # never passes): the consumer stops, the table stays
        meta = "".join(
            f",\n    `{name}` {ctype} `json:$.{name}`" for name, ctype in KAFKA_META_TYPES.items()
        )
        (root / "datasources/views.datasource").write_text(
            f"SCHEMA >\n    `n` Int64 `json:$.n`{meta}\n\nENGINE MergeTree\nENGINE_SORTING_KEY n\n"
        )
        dev.until(lambda: dev.said("Kafka consumers stopped: views"))
        produce(c, [{"n": 10 + i} for i in range(4)], 1)
        metrics = httpx.get(f"{dev.base}/metrics", timeout=10).text
        assert lag_of("views") not in metrics and lag_of("clicks") in metrics
        assert sum("Kafka consumers restarted" in line for line in dev.lines) == 1
        time.sleep(3)
        assert dev.count("views") == 4 and dev.count("clicks") == 12
    finally:
        dev.proc.terminate()
        try:
            dev.proc.wait(30)
        except subprocess.TimeoutExpired:
            dev.proc.kill()


def test_a_deploy_through_rtp_serve_moves_its_consumers(project_factory):
    """`POST /v0/deploy` to a running `rtp serve` (what `rtp deploy` does when a server
    holds the project): the consumer of a datasource whose topic changed reads the new
    topic and no longer the old one, without restarting the server."""
    tag = uuid.uuid4().hex[:8]
    a, b = f"serve_a_{tag}", f"serve_b_{tag}"
    for topic in (a, b):
        create_topic(topic, 1)
    root = project_factory(
        {
            "connections/bus.connection": f"TYPE kafka\nKAFKA_BOOTSTRAP_SERVERS {BROKER}\n",
            "datasources/clicks.datasource": datasource(a, f"g_{tag}"),
        },
        base={"rtp.yaml": "name: kafkaserve\n"},
    )
    deploy(root)
    produce(a, [{"n": i} for i in range(5)], 1)
    with rtp_serve(root) as s:
        auth = {"Authorization": f"Bearer {s.admin}"}

        def count(where: str = "1") -> int:
            return count_rows(s.base, "clicks", where, auth)

        until(lambda: count() == 5, s.proc)
        (root / "datasources/clicks.datasource").write_text(datasource(b, f"g_{tag}"))
        r = httpx.post(f"{s.base}/v0/deploy", json={}, headers=auth, timeout=60)
        assert r.status_code == 200, r.text
        produce(b, [{"n": 100 + i} for i in range(7)], 1)
        produce(a, [{"n": 50 + i} for i in range(3)], 1)
        until(lambda: count() >= 12, s.proc)
        time.sleep(3)
        assert count() == 12
        assert count("n >= 100") == 7 and count("n >= 50 AND n < 100") == 0
