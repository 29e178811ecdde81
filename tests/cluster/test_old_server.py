"""A project on an old ClickHouse server (Debian's 18.16, RTP_TEST_CLICKHOUSE_URL): pipes
compose as nested subqueries where the server has no table CTEs, and LowCardinality
columns deploy with the setting the server needs. Through the CLI and `rtp serve`."""

from __future__ import annotations

import json
import os
import uuid

import httpx
import pytest

from rtp.engine import MIN_VERSIONS, version_tuple
from tests.serving import rtp_serve

URL = os.environ.get("RTP_TEST_CLICKHOUSE_URL")
pytestmark = pytest.mark.skipif(
    not URL,
    reason="RTP_TEST_CLICKHOUSE_URL is not set; "
    "source .ci/services/clickhouse.sh to start a server",
)

EVENTS = """
    columns:
      - {name: timestamp, type: DateTime}
      - {name: user_id, type: String}
      - {name: product_id, type: LowCardinality(String)}
      - {name: price, type: Float64}
    sorting_key: [user_id, timestamp]
"""
ROWS = [
    {"timestamp": "2030-01-01 10:00:00", "user_id": "u1", "product_id": "p1", "price": 10},
    {"timestamp": "2030-01-01 10:00:01", "user_id": "u1", "product_id": "p2", "price": 25},
    {"timestamp": "2030-01-01 10:00:02", "user_id": "u1", "product_id": "p1", "price": 10},
    {"timestamp": "2030-01-01 10:00:03", "user_id": "u2", "product_id": "p3", "price": 99},
]


@pytest.fixture
def database():
    from rtp.engine.clickhouse import ClickHouseBackend

    url = f"{URL.rsplit('/', 1)[0]}/rtp_test_old_{uuid.uuid4().hex[:8]}"
    yield url
    backend = ClickHouseBackend(url)
    backend.execute(f"DROP DATABASE IF EXISTS `{backend.database}`")
    backend.close()


def test_multi_node_endpoint_and_low_cardinality_on_the_server(project_factory, cli, database):
    from rtp.engine.clickhouse import ClickHouseBackend

    root = project_factory({"datasources/events.yaml": EVENTS})
    (root / "rows.ndjson").write_text("".join(json.dumps(r) + "\n" for r in ROWS))
    deployed = cli("deploy", "-p", root, "--target", database)
    assert deployed.exit_code == 0, deployed.output
    assert (
        cli("append", "-p", root, "--target", database, "events", root / "rows.ndjson").exit_code
        == 0
    )

    backend = ClickHouseBackend(database)
    try:
        old = version_tuple(backend.version()) < MIN_VERSIONS["table CTEs"]
        types = dict(
            backend.query(
                "SELECT name, type FROM system.columns WHERE "
                "database = currentDatabase() AND table = 'events'"
            )[1]
        )
    finally:
        backend.close()
    assert types["product_id"] == "LowCardinality(String)"

    with rtp_serve(root, "--target", database) as srv:
        r = httpx.get(
            f"{srv.base}/v0/pipes/by_user.json",
            params={"user_id": "u1", "token": srv.admin},
            timeout=10,
        )
    assert r.status_code == 200, r.text
    assert r.json()["data"] == [
        {"product_id": "p2", "spent": 25},
        {"product_id": "p1", "spent": 20},
    ], f"on ClickHouse {'without' if old else 'with'} table CTEs"
