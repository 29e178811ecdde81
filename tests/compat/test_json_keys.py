"""JSON columns' paths as GROUP BY / ORDER BY / JOIN keys, as Tinybird projects use them
(tinynest groups webhook events by `event.subscription.plan.name`). A JSON path is
Dynamic, which ClickHouse refuses as a key unless the session allows it; rtp's sessions
do (rtp.engine.SESSION_SETTINGS), in check, in materialized views and in endpoints."""

from __future__ import annotations

import json
import os

import pytest

from rtp.engine import SESSION_SETTINGS

PROJECT = {
    "datasources/orb.datasource": """
        SCHEMA >
          `event_type` String `json:$.type`,
          `event` JSON `json:$` DEFAULT '{}'

        ENGINE "MergeTree"
        ENGINE_SORTING_KEY "event_type"
    """,
    "datasources/subs_by_plan.datasource": """
        SCHEMA >
          `plan` String,
          `subs` UInt64

        ENGINE "SummingMergeTree"
        ENGINE_SORTING_KEY "plan"
    """,
    "materializations/subs_by_plan_mv.pipe": """
        NODE by_plan
        SQL >
            SELECT event.subscription.plan.name AS plan, count() AS subs
            FROM orb
            GROUP BY plan

        TYPE materialized
        DATASOURCE subs_by_plan
    """,
    "endpoints/plans.pipe": """
        NODE ep
        SQL >
            %
            SELECT DISTINCT event.subscription.plan.name AS plan, count() AS subs
            FROM orb
            WHERE event_type = {{ String(kind, 'subscription.created') }}
            GROUP BY plan
            ORDER BY plan

        TYPE endpoint
    """,
    "endpoints/summed.pipe": """
        NODE ep
        SQL >
            SELECT plan, sum(subs) AS subs FROM subs_by_plan GROUP BY plan ORDER BY plan

        TYPE endpoint
    """,
    "endpoints/joined.pipe": """
        NODE ep
        SQL >
            SELECT a.event_type AS kind, count() AS n
            FROM orb AS a
            INNER JOIN orb AS b ON a.event.subscription.plan.name = b.event.subscription.plan.name
            WHERE a.event_type = 'subscription.created'
            GROUP BY kind

        TYPE endpoint
    """,
    "tests/joined.yaml": """
        - name: joined_on_a_json_path
          parameters: ''
          expected_result: |
            {"kind":"subscription.created","n":"5"}
    """,
    "tests/plans.yaml": """
        - name: grouped_by_a_json_path
          parameters: kind=subscription.created
          expected_result: |
            {"plan":"pro","subs":"2"}
            {"plan":"team","subs":"1"}
    """,
    "tests/summed.yaml": """
        - name: the_view_grouped_too
          parameters: ''
          expected_result: |
            {"plan":"","subs":"1"}
            {"plan":"pro","subs":"2"}
            {"plan":"team","subs":"1"}
    """,
}

EVENTS = [
    {"type": "subscription.created", "subscription": {"plan": {"name": "pro"}}},
    {"type": "subscription.created", "subscription": {"plan": {"name": "team"}}},
    {"type": "subscription.created", "subscription": {"plan": {"name": "pro"}}},
    {"type": "customer.created", "customer": {"id": 7}},
]


def test_session_settings_allow_dynamic_keys():
    assert SESSION_SETTINGS == {
        "allow_suspicious_types_in_group_by": 1,
        "allow_suspicious_types_in_order_by": 1,
        "allow_dynamic_type_in_join_keys": 1,
    }


def test_json_paths_as_keys_check_deploy_and_answer(project_factory, cli):
    root = project_factory({**PROJECT, "tinyb": "{}"}, base=None)
    (root / "fixtures").mkdir()
    (root / "fixtures/orb.ndjson").write_text("".join(json.dumps(e) + "\n" for e in EVENTS))
    check = cli("check", "-p", root)
    assert check.exit_code == 0, check.stdout
    assert "0 error(s)" in check.stdout or check.stdout.startswith("ok"), check.stdout
    result = cli("test", "-p", root)
    out = result.stdout + (result.stderr or "")
    assert result.exit_code == 0, out
    assert out.strip().splitlines()[-1] == "3 passed, 0 failed", out


@pytest.mark.parametrize("key", ["GROUP BY", "ORDER BY"])
def test_check_still_reports_a_real_error_in_such_a_node(project_factory, cli, key):
    files = dict(PROJECT)
    files["endpoints/plans.pipe"] = f"""
        NODE ep
        SQL >
            SELECT event.subscription.plan.name AS plan FROM orb {key} no_such_column

        TYPE endpoint
    """
    root = project_factory({**files, "tinyb": "{}"}, base=None)
    check = cli("check", "-p", root)
    assert check.exit_code == 1
    assert "endpoints/plans.pipe" in check.stdout and "no_such_column" in check.stdout


SERVER = os.environ.get("RTP_TEST_CLICKHOUSE_URL")


@pytest.mark.skipif(not SERVER, reason="RTP_TEST_CLICKHOUSE_URL is not set (a server test)")
def test_a_server_session_gets_only_the_settings_it_knows(monkeypatch):
    """18.16 has neither the JSON type nor these settings: sending an unknown setting
    would fail every query, so a server gets those its system.settings lists. Proven
    with a setting 18.16 does have, beside one no server has."""
    import rtp.engine.clickhouse as ch
    from rtp.engine.limits import Limits

    monkeypatch.setattr(
        ch,
        "SESSION_SETTINGS",
        {"allow_experimental_low_cardinality_type": 1, "no_such_setting_anywhere": 1},
    )
    backend = ch.ClickHouseBackend(SERVER)
    try:
        sql = (
            "SELECT value FROM system.settings "
            "WHERE name = 'allow_experimental_low_cardinality_type'"
        )
        assert backend.query(sql)[1] == [["1"]]
        assert backend.query(sql, limits=Limits())[1] == [["1"]]  # a caller's read-only query
    finally:
        backend.close()


@pytest.mark.skipif(not SERVER, reason="RTP_TEST_CLICKHOUSE_URL is not set (a server test)")
def test_a_server_without_the_json_type_refuses_before_any_change(project_factory, cli):
    import uuid

    from rtp.engine import MIN_VERSIONS, version_tuple
    from rtp.engine.clickhouse import ClickHouseBackend

    database = f"rtp_test_json_{uuid.uuid4().hex[:8]}"
    url = f"{SERVER.rsplit('/', 1)[0]}/{database}"
    backend = ClickHouseBackend(url)
    try:
        if version_tuple(backend.version()) >= MIN_VERSIONS["the JSON type"]:
            pytest.skip(f"ClickHouse {backend.version()} has the JSON type")
        root = project_factory(
            {**PROJECT, "rtp.yaml": f"name: shop\ntargets:\n  server: {url}\n"}, base=None
        )
        result = cli("deploy", "-p", root, "--target", "server")
        out = result.stdout + (result.stderr or "")
        assert result.exit_code != 0
        assert "RTP502" in out and "the JSON type, which needs ClickHouse 24.8" in out, out
        assert "datasources/orb.datasource" in out
        # nothing half-applied: no table of the project (rtp's deploy lock may exist)
        assert [t for (t,) in backend.query("SHOW TABLES")[1] if not t.startswith("_rtp_")] == []
    finally:
        backend.execute(f"DROP DATABASE IF EXISTS `{database}`")
        backend.close()
