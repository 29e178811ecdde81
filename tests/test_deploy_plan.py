"""Plan and apply on real in-memory ClickHouse (chDB), statements recorded."""

from __future__ import annotations

import pytest
from deploy_helpers import SHOP, drop, memory_backend, scalar

from rtp.deploy import apply, deploy, plan
from rtp.errors import EngineError
from rtp.project import load_project


@pytest.fixture
def backend():
    b = memory_backend()
    yield b
    drop(b)


@pytest.fixture
def shop(project_factory):
    def make(overrides: dict | None = None):
        root = project_factory({**SHOP, **(overrides or {})}, base=None)
        model, problems = load_project(root)
        assert not problems.errors, [str(p) for p in problems]
        return model

    return make


def actions(p):
    return [(c.action, c.kind, c.name) for c in p.changes]


def test_first_deploy_creates_in_dependency_order(shop, backend):
    p = plan(shop(), backend)
    assert actions(p) == [
        ("create", "table", "events"),
        ("create", "table", "spend"),
        ("create", "view", "spend_mv"),
    ]
    assert backend.statements == []  # planning reads only
    assert p.render() == (
        f"Plan for embedded:{backend.database}:\n"
        "  + create table events: new datasource\n"
        "  + create table spend: new datasource\n"
        "  + create view spend_mv: materialized pipe -> spend, backfilled\n"
        "3 create."
    )
    apply(p, backend)
    _, rows = backend.query(
        "SELECT name, engine FROM system.tables WHERE database = "
        "currentDatabase() AND name NOT LIKE '\\_rtp%' ORDER BY name"
    )
    assert rows == [
        ["events", "MergeTree"],
        ["spend", "SummingMergeTree"],
        ["spend_mv", "MaterializedView"],
    ]
    backend.execute("INSERT INTO events VALUES (now(), 'u1', 'p1', 2.5), (now(), 'u1', 'p2', 1)")
    assert backend.query("SELECT user_id, sum(total), sum(n) FROM spend GROUP BY user_id")[1] == [
        ["u1", 3.5, 2]
    ]


def test_redeploy_unchanged_runs_no_statement(shop, backend):
    model = shop()
    deploy(model, backend)
    backend.statements.clear()
    again = deploy(model, backend)
    assert backend.statements == []
    assert {c.action for c in again.changes} == {"no-op"}
    assert again.render().endswith("nothing to do.")


def test_state_is_shared_by_every_client_of_the_target(shop, backend):
    from rtp.engine.embedded import EmbeddedBackend

    deploy(shop(), backend)
    other = EmbeddedBackend(":memory:", database=backend.database)  # "another machine"
    try:
        assert {c.action for c in plan(shop(), other).changes} == {"no-op"}
    finally:
        other.close()


def test_populate_backfills_existing_rows(shop, backend):
    model = shop({"pipes/spend_mv.yaml": None})
    deploy(model, backend)
    backend.execute("INSERT INTO events VALUES (now(), 'u1', 'p1', 4), (now(), 'u2', 'p1', 1)")
    p = deploy(shop(), backend)
    assert actions(p)[-1] == ("create", "view", "spend_mv")
    assert backend.query("SELECT user_id, sum(total) FROM spend GROUP BY user_id ORDER BY user_id")[
        1
    ] == [["u1", 4.0], ["u2", 1.0]]


def test_added_column_is_an_alter_and_keeps_rows(shop, backend):
    deploy(shop(), backend)
    backend.execute("INSERT INTO events VALUES (now(), 'u1', 'p1', 2)")
    events = SHOP["datasources/events.yaml"].replace(
        "sorting_key",
        "  - {name: country, type: LowCardinality(String), default: \"'ES'\"}\n        sorting_key",
    )
    backend.statements.clear()
    p = deploy(shop({"datasources/events.yaml": events}), backend)
    assert actions(p)[0] == ("alter", "table", "events")
    assert backend.statements[0] == (
        "ALTER TABLE `events` ADD COLUMN `country` "
        "LowCardinality(String) DEFAULT 'ES' AFTER `price`"
    )
    assert backend.query("SELECT user_id, country FROM events")[1] == [["u1", "ES"]]


def test_dropping_a_column_needs_allow_destructive(shop, backend):
    deploy(shop(), backend)
    events = "\n".join(
        line for line in SHOP["datasources/events.yaml"].split("\n") if "product_id" not in line
    )
    model = shop({"datasources/events.yaml": events})
    p = plan(model, backend)
    assert p.changes[0].destructive and "drop column product_id" in p.changes[0].reason
    backend.statements.clear()
    with pytest.raises(EngineError) as err:
        apply(p, backend)
    assert err.value.code == "RTP504" and backend.statements == []
    apply(p, backend, allow_destructive=True)
    cols = [
        r[0]
        for r in backend.query(
            "SELECT name FROM system.columns WHERE table = "
            "'events' AND database = currentDatabase()"
        )[1]
    ]
    assert cols == ["timestamp", "user_id", "price"]


def test_sorting_key_change_rebuilds_and_keeps_rows_and_views(shop, backend):
    deploy(shop(), backend)
    backend.execute("INSERT INTO events VALUES (now(), 'u1', 'p1', 2), (now(), 'u2', 'p2', 3)")
    events = SHOP["datasources/events.yaml"].replace(
        "[user_id, timestamp]", "[product_id, timestamp]"
    )
    p = plan(shop({"datasources/events.yaml": events}), backend)
    assert actions(p) == [
        ("rebuild", "table", "events"),
        ("no-op", "table", "spend"),
        ("recreate", "view", "spend_mv"),
    ]
    assert not p.destructive  # same columns, same engine: nothing is lost
    apply(p, backend)
    assert (
        scalar(
            backend,
            "SELECT sorting_key FROM system.tables WHERE name = 'events' "
            "AND database = currentDatabase()",
        )
        == "product_id, timestamp"
    )
    assert scalar(backend, "SELECT count() FROM events") == 2
    backend.execute("INSERT INTO events VALUES (now(), 'u3', 'p1', 5)")  # view still feeds
    assert scalar(backend, "SELECT sum(total) FROM spend") == 10.0
    assert {c.action for c in plan(shop({"datasources/events.yaml": events}), backend).changes} == {
        "no-op"
    }


def test_ttl_settings_and_indexes_are_altered(shop, backend):
    deploy(shop(), backend)
    events = (
        SHOP["datasources/events.yaml"]
        + """
        ttl: timestamp + INTERVAL 30 DAY
        settings: {merge_with_ttl_timeout: 3600}
        indexes: [{name: idx_product, expr: product_id, type: bloom_filter, granularity: 4}]
    """
    )
    backend.statements.clear()
    p = deploy(shop({"datasources/events.yaml": events}), backend, allow_destructive=True)
    assert p.changes[0].action == "alter"
    assert backend.statements[:3] == [
        "ALTER TABLE `events` ADD INDEX `idx_product` product_id TYPE bloom_filter GRANULARITY 4",
        "ALTER TABLE `events` MODIFY TTL timestamp + INTERVAL 30 DAY",
        "ALTER TABLE `events` MODIFY SETTING merge_with_ttl_timeout = 3600",
    ]
    ddl = scalar(
        backend,
        "SELECT create_table_query FROM system.tables WHERE name = 'events' "
        "AND database = currentDatabase()",
    )
    assert "TTL timestamp + toIntervalDay(30)" in ddl and "idx_product" in ddl


def test_drift_is_reported_by_the_plan(shop, backend):
    deploy(shop(), backend)
    backend.execute("ALTER TABLE events ADD COLUMN note String")
    p = plan(shop(), backend)
    assert p.drift == ["table events was changed by hand (column note added)"]
    assert "drift: table events was changed by hand" in p.render()
    assert p.changes[0].action == "rebuild" and p.changes[0].destructive
    backend.execute("DROP TABLE spend_mv")
    assert "view spend_mv was dropped by hand" in plan(shop(), backend).drift


def test_removed_datasource_and_pipe_are_dropped(shop, backend):
    deploy(shop(), backend)
    model = shop()
    (model.root / "pipes/spend_mv.yaml").unlink()
    (model.root / "datasources/spend.yaml").unlink()
    model, _ = load_project(model.root)
    p = plan(model, backend)
    assert actions(p) == [
        ("drop", "view", "spend_mv"),
        ("no-op", "table", "events"),
        ("drop", "table", "spend"),
    ]
    apply(p, backend, allow_destructive=True)
    assert {c.action for c in plan(model, backend).changes} == {"no-op"}


def test_failing_statement_names_the_step_and_deploy_resumes(shop, backend):
    deploy(shop({"pipes/spend_mv.yaml": None}), backend)
    backend.execute("INSERT INTO events VALUES (now(), 'u1', 'p1', 2)")
    # a table of the user's in the way of the view: CREATE MATERIALIZED VIEW fails
    backend.execute("CREATE TABLE spend_mv (x Int8) ENGINE = Memory")
    with pytest.raises(EngineError) as err:
        deploy(shop(), backend)
    assert err.value.code == "RTP503"
    # the backfill goes through a fresh copy of the target, swapped in before the view
    assert "create view spend_mv, step 7 of 8" in err.value.message
    assert "CREATE MATERIALIZED VIEW" in err.value.hint
    backend.execute("DROP TABLE spend_mv")
    p = deploy(shop(), backend)  # the journaled deploy is finished first: nothing is left
    assert p.pending == []
    assert scalar(backend, "SELECT sum(total) FROM spend") == 2.0
    backend.execute("INSERT INTO events VALUES (now(), 'u1', 'p1', 3)")  # the view feeds
    assert scalar(backend, "SELECT sum(total) FROM spend") == 5.0


def test_rebuilt_view_target_keeps_rows_and_the_view_feeds_it(shop, backend):
    deploy(shop(), backend)
    backend.execute("INSERT INTO events VALUES (now(), 'u1', 'p1', 2)")
    spend = SHOP["datasources/spend.yaml"].replace(
        "sorting_key: [user_id]", "sorting_key: [user_id, n]"
    )
    model = shop({"datasources/spend.yaml": spend})
    assert [c.action for c in deploy(model, backend).pending] == ["rebuild"]
    backend.execute("INSERT INTO events VALUES (now(), 'u1', 'p1', 3)")
    assert scalar(backend, "SELECT sum(total) FROM spend") == 5.0
    assert plan(model, backend).drift == []
    assert {c.action for c in plan(model, backend).changes} == {"no-op"}


def test_unrecorded_view_is_rebuilt_without_counting_twice(shop, backend):
    deploy(shop(), backend)
    backend.execute("INSERT INTO events VALUES (now(), 'u1', 'p1', 2)")
    backend.execute("DROP TABLE _rtp_state")  # as if the state was never written
    p = plan(shop(), backend)
    assert actions(p) == [
        ("adopt", "table", "events"),
        ("adopt", "table", "spend"),
        ("rebuild", "view", "spend_mv"),
    ]
    apply(p, backend)
    assert scalar(backend, "SELECT sum(total) FROM spend") == 2.0
    assert {c.action for c in plan(shop(), backend).changes} == {"no-op"}
