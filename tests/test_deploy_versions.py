"""Deploy versions through the CLI on the embedded engine and a ClickHouse 18.16 server:
`rtp deploy --stage`, `promote`, `rollback`, `discard`, `ls`, the deploy lock, and a
crash in the middle of a promote (docs/deploy.md, "Versions")."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
import time
import uuid

import pytest
from deploy_helpers import SHOP, SHOP_V2, SPENT

from rtp.deploy.lock import LOCK_COLUMNS, LOCK_TABLE
from rtp.deploy.state import own_ddl

# the next version, with the endpoint (new to a project made from SHOP alone)
V2 = {**SHOP_V2, "pipes/spent.yaml": SPENT}
SERVER_URL = os.environ.get("RTP_TEST_CLICKHOUSE_URL")


def _events(path, n: int, start: int = 0) -> None:
    lines = [
        json.dumps(
            {
                "timestamp": "2024-05-01 10:00:00",
                "user_id": f"u{i % 3}",
                "product": {"id": f"p{i}", "price": 1.0},
            }
        )
        for i in range(start, start + n)
    ]
    path.write_text("\n".join(lines) + "\n")


def _write(root, files: dict) -> None:
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(textwrap.dedent(text).lstrip("\n"))


def _sql(cli, root, query: str, *target) -> list:
    result = cli("sql", query, "--format", "json", "-p", root, *target)
    assert result.exit_code == 0, result.output
    return [list(row.values()) for row in json.loads(result.output)["data"]]


@pytest.fixture(params=["embedded", "server"])
def target(request, project_factory):
    """(project root, extra CLI args): the embedded engine, or a fresh database of the
    ClickHouse server."""
    root = project_factory({**SHOP, "pipes/spent.yaml": SPENT}, base=None)
    if request.param == "embedded":
        yield root, ()
        return
    if not SERVER_URL:
        pytest.skip("RTP_TEST_CLICKHOUSE_URL is not set (a ClickHouse server to deploy to)")
    url = SERVER_URL.rsplit("/", 1)[0] + f"/rtp_test_versions_{uuid.uuid4().hex[:8]}"
    yield root, ("--target", url)
    from rtp.engine.clickhouse import ClickHouseBackend

    backend = ClickHouseBackend(url)
    backend.execute(f"DROP DATABASE IF EXISTS `{backend.database}`")
    backend.close()


def test_stage_promote_rollback_discard(target, cli, tmp_path, monkeypatch):
    root, where = target
    assert cli("deploy", "-p", root, *where).exit_code == 0
    data = tmp_path / "a.ndjson"
    _events(data, 30)
    appended = cli("append", "events", data, "-p", root, *where)
    assert appended.exit_code == 0, appended.output
    _write(root, V2)

    staged = cli("deploy", "--stage", "-p", root, *where)
    assert staged.exit_code == 0, staged.output
    assert "changed: events, spend, spend_mv" in staged.output
    assert "staged version 2" in staged.output
    # nothing live changed; the staged copies hold the live rows and the new query's
    assert _sql(cli, root, "SELECT count(), sum(n), sum(total) FROM spend FINAL", *where) == [
        [3, 30, 30]
    ]
    assert _sql(cli, root, "SELECT sum(n), sum(total) FROM spend__rtp_stage FINAL", *where) == [
        [30, 60]
    ]
    # rows ingested while staged reach both versions once
    _events(data, 6, start=30)
    appended = cli("append", "events", data, "-p", root, *where)
    assert appended.exit_code == 0, appended.output
    assert _sql(cli, root, "SELECT count() FROM events__rtp_stage", *where) == [[36]]
    assert _sql(cli, root, "SELECT sum(n), sum(total) FROM spend__rtp_stage FINAL", *where) == [
        [36, 72]
    ]
    listed = cli("deploy", "ls", "-p", root, *where)
    assert "1  live" in listed.output and "2  staging" in listed.output, listed.output
    # the project's endpoint tests on the staged version's data (the target's own)
    if where:
        monkeypatch.setenv("RTP_CLICKHOUSE_URL", where[1])
    _write(
        root,
        {
            "tests/spent.yaml": """
        - name: doubled
          parameters: {user_id: u1}
          expected_result: |
            {"total": 24, "n": 12}
    """
        },
    )
    tested = cli("test", "--target", "staging", "-p", root)
    assert tested.exit_code == 0, tested.output
    assert "1 passed, 0 failed on the staging version" in tested.output
    tested = cli("test", "--target", "live", "-p", root)
    assert tested.exit_code == 1 and "0 passed, 1 failed on the live version" in tested.output
    monkeypatch.delenv("RTP_CLICKHOUSE_URL", raising=False)
    requests = tmp_path / "requests.txt"
    requests.write_text("# the spend endpoint\n/v0/pipes/spent.json?user_id=u1\nspent?user_id=u2\n")
    diffed = cli("deploy", "diff", requests, "--strict", "-p", root, *where)
    assert diffed.exit_code == 1, diffed.output
    assert "DIFF /v0/pipes/spent.json?user_id=u1" in diffed.output
    assert '"total": 12' in diffed.output and '"total": 24' in diffed.output
    assert "2 request(s), 2 differ; median latency live" in diffed.output

    again = cli("deploy", "--stage", "-p", root, *where)
    assert again.exit_code == 1 and "RTP517" in again.output
    straight = cli("deploy", "-p", root, *where)
    assert straight.exit_code == 1 and "RTP517" in straight.output

    promoted = cli("deploy", "promote", "-p", root, *where)
    assert promoted.exit_code == 0, promoted.output
    assert "version 2 is live; version 1 is kept for rollback" in promoted.output
    assert _sql(cli, root, "SELECT sum(n), sum(total) FROM spend FINAL", *where) == [[36, 72]]
    assert _sql(cli, root, "SELECT count() FROM events WHERE country = 'es'", *where) == [[36]]
    # the deploy state follows: the project is what is live
    up = cli("deploy", "-p", root, *where)
    assert "up to date" in up.output, up.output
    _events(data, 3, start=36)
    appended = cli("append", "events", data, "-p", root, *where)
    assert appended.exit_code == 0, appended.output

    back = cli("deploy", "rollback", "-p", root, *where)
    assert back.exit_code == 0, back.output
    assert "version 1 is live again" in back.output
    # the old version kept up with the rows ingested after the promote
    assert _sql(cli, root, "SELECT count(), sum(n), sum(total) FROM spend FINAL", *where) == [
        [3, 39, 39]
    ]
    cols = _sql(
        cli,
        root,
        "SELECT name FROM system.columns WHERE database = currentDatabase() "
        "AND table = 'events' ORDER BY name",
        *where,
    )
    assert ["country"] not in cols
    forward = cli("deploy", "rollback", "-p", root, *where)
    assert forward.exit_code == 0 and "version 2 is live again" in forward.output
    assert _sql(cli, root, "SELECT sum(n), sum(total) FROM spend FINAL", *where) == [[39, 78]]

    nothing = cli("deploy", "discard", "-p", root, *where)
    assert nothing.exit_code == 1 and "RTP516" in nothing.output
    _write(root, {"pipes/spend_mv.yaml": V2["pipes/spend_mv.yaml"].replace("* 2", "* 3")})
    assert cli("deploy", "--stage", "-p", root, *where).exit_code == 0
    dropped = cli("deploy", "discard", "-p", root, *where)
    assert dropped.exit_code == 0 and "discarded version 3" in dropped.output
    left = _sql(
        cli,
        root,
        "SELECT name FROM system.tables WHERE database = currentDatabase() "
        "AND name LIKE '%rtp_stage%'",
        *where,
    )
    assert left == []
    listed = cli("deploy", "ls", "-p", root, *where).output
    assert "3  discarded" in listed and "2  live" in listed and "1  previous" in listed
    # straight to live again: the kept version no longer matches live, so it is dropped
    straight = cli("deploy", "-p", root, *where)
    assert straight.exit_code == 0, straight.output
    assert "1  retired" in cli("deploy", "ls", "-p", root, *where).output
    left = _sql(
        cli,
        root,
        "SELECT name FROM system.tables WHERE database = currentDatabase() "
        "AND position(name, '__rtp_v') > 0",
        *where,
    )
    assert left == []
    assert _sql(cli, root, "SELECT sum(n), sum(total) FROM spend FINAL", *where) == [[39, 117]]


def test_lock_names_holder_and_breaks(project_factory, cli):
    root = project_factory(SHOP, base=None)
    assert cli("deploy", "-p", root).exit_code == 0
    _write(root, V2)
    mixed = cli("deploy", "--stage", "--plan", "-p", root)
    assert mixed.exit_code == 2 and "--stage takes no --plan" in mixed.output
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        from rtp.engine.embedded import EmbeddedBackend

        backend = EmbeddedBackend(str(root / ".rtp" / "data"))
        backend.execute(own_ddl(backend, LOCK_TABLE, LOCK_COLUMNS, "(lock_id, at)"))
        backend.insert_json(
            LOCK_TABLE,
            [
                {
                    "lock_id": "other",
                    "event": "take",
                    "command": "rtp deploy promote",
                    "host": socket.gethostname(),
                    "pid": holder.pid,
                    "taken_at": "2026-01-02 03:04:05",
                    "expires": time.time_ns() + 60 * 10**9,
                    "at": 1,
                }
            ],
        )
        backend.close()
        refused = cli("deploy", "--stage", "-p", root)
        assert refused.exit_code == 1
        assert "RTP515" in refused.output
        assert f"rtp deploy promote (process {holder.pid} on" in refused.output
        assert "since 2026-01-02 03:04:05 UTC" in refused.output
        # the holder dies: its lock no longer counts
        holder.kill()
        holder.wait()
        staged = cli("deploy", "--stage", "-p", root)
        assert staged.exit_code == 0, staged.output
        # the project given before the subcommand counts too
        assert "2  staging" in cli("deploy", "-p", root, "ls").output
    finally:
        holder.kill()


def test_crash_during_promote_is_finished_by_the_next_command(project_factory, cli, tmp_path):
    root = project_factory(SHOP, base=None)
    assert cli("deploy", "-p", root).exit_code == 0
    data = tmp_path / "a.ndjson"
    _events(data, 12)
    assert cli("append", "events", data, "-p", root).exit_code == 0
    _write(root, V2)
    assert cli("deploy", "--stage", "-p", root).exit_code == 0
    # killed right after the promote's 3rd step (dropping views before the swap)
    env = {**os.environ, "RTP_TEST_DEPLOY_CRASH_AFTER": "3"}
    crashed = subprocess.run(
        [sys.executable, "-m", "rtp.cli.main", "deploy", "promote", "-p", str(root)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert crashed.returncode == 137, crashed.stderr
    finished = cli("deploy", "promote", "-p", root)
    assert finished.exit_code == 0, finished.output
    assert "resumed" in finished.output and "finished the interrupted deploy" in finished.output
    assert "2  live" in cli("deploy", "ls", "-p", root).output
    assert _sql(cli, root, "SELECT sum(n), sum(total) FROM spend FINAL") == [[12, 24]]
    assert "up to date" in cli("deploy", "-p", root).output
    back = cli("deploy", "rollback", "-p", root)
    assert back.exit_code == 0, back.output
    assert _sql(cli, root, "SELECT sum(n), sum(total) FROM spend FINAL") == [[12, 12]]


FORWARD = """
    columns:
      - {name: timestamp, type: DateTime}
      - {name: user_id, type: String}
      - {name: product_id, type: String, json: $.product.id}
      - {name: price, type: Float64, json: $.product.price}
      - {name: size, type: String, default: "'?'"}
    sorting_key: [user_id, timestamp]
    forward_query: |
      SELECT timestamp, user_id, product_id, price,
             if(product_id IN ('p0', 'p1'), 'first', 'later') AS size
"""


def test_forward_query_fills_and_feeds_the_staged_table(project_factory, cli, tmp_path):
    root = project_factory(SHOP, base=None)
    assert cli("deploy", "-p", root).exit_code == 0
    data = tmp_path / "a.ndjson"
    _events(data, 4)
    assert cli("append", "events", data, "-p", root).exit_code == 0
    _write(root, {"datasources/events.yaml": FORWARD})
    staged = cli("deploy", "--stage", "-p", root)
    assert staged.exit_code == 0, staged.output
    _events(data, 2, start=4)  # fed through the forwarder, with the same query
    assert cli("append", "events", data, "-p", root).exit_code == 0
    rows = _sql(
        cli, root, "SELECT size, count() FROM events__rtp_stage GROUP BY size ORDER BY size"
    )
    assert rows == [["first", 2], ["later", 4]]
    assert cli("deploy", "promote", "-p", root).exit_code == 0
    assert _sql(cli, root, "SELECT count() FROM events WHERE size = 'first'") == [[2]]


def test_tinybird_forward_query_is_read(project_factory):
    from rtp.project.load import load_project

    root = project_factory(
        {
            "events.datasource": """
                SCHEMA >
                    `user_id` String `json:$.user_id`,
                    `n` UInt64 `json:$.n`

                FORWARD_QUERY >
                    SELECT user_id, toUInt64(n) AS n
            """
        },
        base=None,
    )
    project, problems = load_project(root)
    assert not problems.errors, problems.errors
    assert project.datasources["events"].forward_query == "SELECT user_id, toUInt64(n) AS n"


@pytest.mark.parametrize("crash_after", [3, 4, 9, 12])
def test_crash_during_stage_never_doubles_a_row(project_factory, cli, tmp_path, crash_after):
    """Killed after the n-th step of `rtp deploy --stage` (3: the staged events table
    created, 4: filled, 9: the view target backfilled, 12: recorded), the next deploy
    command finishes the stage from its journal: each row once in the staged copies."""
    root = project_factory(SHOP, base=None)
    assert cli("deploy", "-p", root).exit_code == 0
    data = tmp_path / "a.ndjson"
    _events(data, 9)
    assert cli("append", "events", data, "-p", root).exit_code == 0
    _write(root, V2)
    env = {**os.environ, "RTP_TEST_DEPLOY_CRASH_AFTER": str(crash_after)}
    crashed = subprocess.run(
        [sys.executable, "-m", "rtp.cli.main", "deploy", "--stage", "-p", str(root)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert crashed.returncode == 137, crashed.stdout + crashed.stderr
    finished = cli("deploy", "--stage", "-p", root)
    assert finished.exit_code == 0, finished.output
    assert "finished the interrupted deploy" in finished.output
    assert "2  staging" in cli("deploy", "ls", "-p", root).output
    assert _sql(cli, root, "SELECT count() FROM events__rtp_stage") == [[9]]
    assert _sql(cli, root, "SELECT sum(n), sum(total) FROM spend__rtp_stage") == [[9, 18]]
    _events(data, 3, start=9)
    assert cli("append", "events", data, "-p", root).exit_code == 0
    assert _sql(cli, root, "SELECT sum(n), sum(total) FROM spend__rtp_stage") == [[12, 24]]
