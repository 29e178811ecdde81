"""The example project fed from Kafka (docs/example.md): `examples/generator.py --kafka`
produces the shoppers' events to a topic, `rtp connect` on a copy of the root project
(its `storefront_bus` connection made active by RTP_KAFKA_BROKER) turns every one into an
`events` row, and the materialized views count them too."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import uuid

import pytest

from tests.conftest import ROOT
from tests.test_kafka_connect import BROKER, create_topic, run, sql

pytestmark = pytest.mark.skipif(
    not BROKER, reason="RTP_TEST_KAFKA is unset (source .ci/services/kafka.sh for a broker)"
)


def test_the_generator_feeds_the_example_through_kafka(tmp_path, monkeypatch):
    root = tmp_path / "shop"
    root.mkdir()
    shutil.copy2(ROOT / "rtp.yaml", root / "rtp.yaml")
    for name in ("datasources", "pipes", "connections", "examples/storefront"):
        shutil.copytree(ROOT / name, root / name)
    topic = f"storefront_{uuid.uuid4().hex[:8]}"
    events = root / "datasources/events.yaml"
    events.write_text(events.read_text().replace("topic: storefront_events", f"topic: {topic}"))
    create_topic(topic, 2)
    monkeypatch.setenv("RTP_KAFKA_BROKER", BROKER)
    assert run(["deploy"], root).returncode == 0

    gen = subprocess.run(
        [sys.executable, str(ROOT / "examples/generator.py"), "--kafka", BROKER]
        + ["--topic", topic, "--rate", "400", "--duration", "2", "--shoppers", "50"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert gen.returncode == 0, gen.stderr
    sent = int(re.search(r"done: sent ([\d,]+) events, 0 failed", gen.stderr)[1].replace(",", ""))
    assert sent >= 400

    done = run(["connect", "--idle-exit", "4"], root)
    assert done.returncode == 0, done.stderr
    assert f"events: {sent} rows, 0 quarantined" in done.stdout
    counts = sql(
        root,
        "SELECT count(), countIf(event_type = 'view'), countIf(event_type = 'purchase') "
        "FROM events",
    ).splitlines()[-1]
    total, views, purchases = (int(x) for x in counts.split(","))
    assert total == sent
    stats = sql(root, "SELECT sum(views), sum(purchases) FROM product_minute_stats")
    assert stats.splitlines()[-1] == f"{views},{purchases}"
