"""Against a real ClickHouse server: set RTP_TEST_CLICKHOUSE_URL (.ci/services/clickhouse.sh
starts Debian's server and sets it). Features the server's version lacks are skipped,
saying why."""

from __future__ import annotations

import os
import uuid

import pytest
from deploy_helpers import SHOP, Recorder

from rtp.deploy import deploy, plan
from rtp.engine import MIN_VERSIONS, version_tuple
from rtp.errors import EngineError
from rtp.ingest import insert_rows
from rtp.project import load_project

URL = os.environ.get("RTP_TEST_CLICKHOUSE_URL")
if not URL:
    print(
        "\nskipping ClickHouse server tests: RTP_TEST_CLICKHOUSE_URL is not set "
        "(source .ci/services/clickhouse.sh)"
    )
pytestmark = pytest.mark.skipif(
    not URL,
    reason="RTP_TEST_CLICKHOUSE_URL is not set; "
    "source .ci/services/clickhouse.sh to start a server",
)


@pytest.fixture
def server():
    from rtp.engine.clickhouse import ClickHouseBackend

    base = URL.rsplit("/", 1)[0]
    backend = ClickHouseBackend(f"{base}/rtp_test_{uuid.uuid4().hex[:10]}")
    yield Recorder(backend)
    backend.execute(f"DROP DATABASE IF EXISTS `{backend.database}`")
    backend.close()


def needs(server, feature: str) -> None:
    have, need = server.version(), MIN_VERSIONS[feature]
    if version_tuple(have) < need:
        pytest.skip(f"ClickHouse {have} lacks {feature} (needs {need[0]}.{need[1]})")


@pytest.fixture
def shop(project_factory):
    def make(overrides: dict | None = None):
        model, problems = load_project(project_factory({**SHOP, **(overrides or {})}, base=None))
        assert not problems.errors, [str(p) for p in problems]
        return model

    return make


def test_refused_credentials_and_unreachable_host():
    from rtp.engine.clickhouse import ClickHouseBackend

    host = URL.split("@", 1)[1].split("/", 1)[0]
    with pytest.raises(EngineError) as err:
        ClickHouseBackend(f"clickhouse://nobody:wrong@{host}/db")
    assert err.value.code == "RTP501" and "refused the credentials" in err.value.message
    assert "wrong" not in str(err.value)
    with pytest.raises(EngineError) as err:
        ClickHouseBackend("clickhouse://default@127.0.0.1:1/db", connect_timeout=1)
    assert err.value.code == "RTP501" and "unreachable" in err.value.message


def test_timeout_is_reported(server):
    from rtp.engine.clickhouse import ClickHouseBackend

    slow = ClickHouseBackend(URL, timeout=0.5)
    try:
        with pytest.raises(EngineError) as err:
            slow.query("SELECT sleep(2)")
        assert err.value.code == "RTP501" and "timed out" in err.value.message
    finally:
        slow.close()


def test_deploy_ingest_redeploy_migrate(shop, server):
    model = shop()
    deploy(model, server)
    rows = [
        {
            "timestamp": "2030-01-01 10:00:00",
            "user_id": "u1",
            "product": {"id": "p1", "price": 2.5},
        },
        '{"timestamp": "2030-01-01 10:00:01", "user_id": "u1", "product": {"id": "p2", '
        '"price": 1}}',
        '{"timestamp": "nope", "user_id": "u2"}',
    ]
    assert insert_rows(server, model.datasources["events"], rows) == (2, 1)
    assert server.query("SELECT user_id, sum(total), sum(n) FROM spend GROUP BY user_id")[1] == [
        ["u1", 3.5, 2]
    ]
    assert server.query("SELECT count() FROM events_quarantine")[1] == [[1]]

    server.statements.clear()
    assert {c.action for c in deploy(model, server).changes} == {"no-op"}
    assert server.statements == []

    events = SHOP["datasources/events.yaml"]
    added = events.replace("sorting_key", "  - {name: country, type: String}\n        sorting_key")
    assert [c.action for c in deploy(shop({"datasources/events.yaml": added}), server).pending] == [
        "alter"
    ]
    rekeyed = added.replace("[user_id, timestamp]", "[product_id, timestamp]")
    result = deploy(shop({"datasources/events.yaml": rekeyed}), server)
    assert [c.action for c in result.pending] == ["rebuild", "recreate"]
    assert server.query("SELECT count() FROM events")[1] == [[2]]
    with pytest.raises(EngineError, match="inline VALUES"):
        server.execute("INSERT INTO events VALUES ('2030-01-01 11:00:00', 'u2', 'p9', 4)")
    server.execute(
        "INSERT INTO events (timestamp, user_id, product_id, price) "
        "SELECT '2030-01-01 11:00:00', 'u2', 'p9', 4"
    )
    assert server.query("SELECT sum(total) FROM spend")[1] == [[7.5]]

    server.execute("ALTER TABLE events ADD COLUMN by_hand UInt8")
    assert plan(shop({"datasources/events.yaml": rekeyed}), server).drift == [
        "table events was changed by hand (column by_hand added)"
    ]


def test_features_the_server_lacks_fail_with_the_minimum_version(shop, server):
    events = SHOP["datasources/events.yaml"].replace("type: DateTime}", "type: DateTime64(3)}")
    model = shop({"datasources/events.yaml": events})
    if version_tuple(server.version()) >= MIN_VERSIONS["DateTime64"]:
        deploy(model, server)  # a modern server just takes it
        return
    with pytest.raises(EngineError) as err:
        plan(model, server)
    assert err.value.code == "RTP502"
    assert "DateTime64, which needs ClickHouse 20.1 or newer" in err.value.message
    assert server.statements == []


def test_ttl(shop, server):
    needs(server, "table TTL")
    events = SHOP["datasources/events.yaml"] + "\n        ttl: timestamp + INTERVAL 30 DAY\n"
    deploy(shop({"datasources/events.yaml": events}), server)
    assert (
        "TTL"
        in server.query(
            "SELECT create_table_query FROM system.tables WHERE "
            "name = 'events' AND database = currentDatabase()"
        )[1][0][0]
    )


def test_changed_view_rebuilds_its_target_and_copy_pipes_run(shop, server):
    from rtp.deploy.copy import run_copy

    copy = """
        nodes:
          - name: snap
            sql: SELECT user_id, sum(price) AS total, count() AS n FROM events GROUP BY user_id
        type: copy
        target: snapshot
        mode: replace
    """
    snapshot = SHOP["datasources/spend.yaml"].replace("SummingMergeTree", "MergeTree")
    extra = {"pipes/snap.yaml": copy, "datasources/snapshot.yaml": snapshot}
    model = shop(extra)
    deploy(model, server)
    rows = [
        {
            "timestamp": "2030-01-01 10:00:00",
            "user_id": f"u{i % 3}",
            "product": {"id": "p", "price": 1},
        }
        for i in range(600)
    ]
    assert insert_rows(server, model.datasources["events"], rows) == (600, 0)
    mv = SHOP["pipes/spend_mv.yaml"].replace("sum(price) AS total", "sum(price) * 2 AS total")
    result = deploy(shop({**extra, "pipes/spend_mv.yaml": mv}), server)
    assert [c.action for c in result.pending] == ["rebuild"]
    assert server.query("SELECT sum(total), sum(n) FROM spend")[1] == [[1200.0, 600]]
    assert run_copy(model, server, "snap") == 3
    assert run_copy(model, server, "snap") == 3  # replace, not append
