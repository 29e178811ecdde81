"""Copy pipes: schedules (croniter), `rtp check` on a bad schedule, and the server's
scheduler on a real engine with a stepped clock (tests/server/test_serve_schedules_e2e.py
runs it in a real `rtp serve`)."""

from __future__ import annotations

import datetime as dt
import json
import os
import time
import uuid
from types import SimpleNamespace

import pytest
from deploy_helpers import SHOP, drop, memory_backend, scalar

from rtp.deploy import deploy
from rtp.deploy.copy import next_run, run_copy
from rtp.errors import EngineError, Problems, ProjectError
from rtp.project import load_project
from rtp.server.scheduler import Scheduler
from rtp.sql.compose import compile_project

UTC = dt.timezone.utc
AT = dt.datetime(2030, 1, 6, 14, 30, 10, tzinfo=UTC)  # a Sunday


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ("* * * * *", "2030-01-06 14:31:00"),
        ("*/15 * * * *", "2030-01-06 14:45:00"),
        ("0 3 * * mon-fri", "2030-01-07 03:00:00"),
        ("0,45 9,14 * * *", "2030-01-06 14:45:00"),
        ("@hourly", "2030-01-06 15:00:00"),
        ("@daily", "2030-01-07 00:00:00"),
        ("0 0 1 jan *", "2031-01-01 00:00:00"),
        ("* * * * * */20", "2030-01-06 14:30:20"),
    ],
)
def test_next_run(expr, expected):
    assert next_run(expr, AT) == dt.datetime.fromisoformat(expected).replace(tzinfo=UTC)


@pytest.mark.parametrize("expr", ["* * *", "61 * * * *", "0 0 31 2 *", "@every 5m"])
def test_next_run_rejects(expr):
    with pytest.raises(ValueError):
        next_run(expr, AT)


COPY = """
    nodes:
      - name: snap
        sql: SELECT user_id, sum(price) AS total, count() AS n FROM events GROUP BY user_id
    type: copy
    target: snapshot
"""
SNAPSHOT = SHOP["datasources/spend.yaml"].replace("SummingMergeTree", "MergeTree")


@pytest.mark.parametrize(
    ("schedule", "error"),
    [
        ("'*/5 * * *'", "4 fields"),
        ("'61 * * * *'", "out of range"),
        ("'0 0 31 2 *'", "failed to find next date"),
        ("'@every 5m'", "unknown shortcut"),
    ],
)
def test_check_reports_a_bad_schedule_at_its_line(project_factory, cli, schedule, error):
    root = project_factory(
        {
            "pipes/snap.yaml": COPY + f"    schedule: {schedule}\n",
            "datasources/snapshot.yaml": SNAPSHOT,
        },
        base=SHOP,
    )
    result = cli("check", "-p", root, "--format", "json")
    assert result.exit_code == 1
    [problem] = [p for p in json.loads(result.stdout)["problems"] if p["severity"] == "error"]
    assert problem["code"] == "RTP107" and error in problem["message"]
    assert (problem["file"], problem["line"], problem["column"]) == ("pipes/snap.yaml", 6, 11)


@pytest.mark.parametrize(
    ("schedule", "kept"),
    [
        ("'@hourly'", "@hourly"),
        ("'@daily'", "@daily"),
        ("'@on-demand'", None),
        ("'0 3 * * mon-fri'", "0 3 * * mon-fri"),
        ("'* * * * * */10'", "* * * * * */10"),
    ],
)
def test_good_schedules_load(project_factory, schedule, kept):
    root = project_factory(
        {
            "pipes/snap.yaml": COPY + f"    schedule: {schedule}\n",
            "datasources/snapshot.yaml": SNAPSHOT,
        },
        base=SHOP,
    )
    model, problems = load_project(root)
    assert not problems.errors
    assert model.pipes["snap"].schedule == kept


def test_tinybird_copy_schedule_checked_at_its_line(project_factory, cli):
    pipe = (
        "NODE snap\nSQL >\n    SELECT user_id, sum(price) AS total, count() AS n\n"
        "    FROM events GROUP BY user_id\n\nTYPE copy\nTARGET_DATASOURCE snapshot\n"
        "COPY_SCHEDULE 0 25 * * *\n"
    )
    root = project_factory(
        {"copies/snap.pipe": pipe, "datasources/snapshot.yaml": SNAPSHOT}, base=SHOP
    )
    result = cli("check", "-p", root, "--format", "json")
    [problem] = [p for p in json.loads(result.stdout)["problems"] if p["severity"] == "error"]
    assert (problem["code"], problem["file"], problem["line"]) == ("RTP107", "copies/snap.pipe", 8)


class Clock:
    def __init__(self, start: dt.datetime):
        self.now = start

    def __call__(self) -> dt.datetime:
        return self.now


def wait_idle(scheduler: Scheduler, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while any(job["running"] for job in scheduler.status().values()):
        assert time.monotonic() < deadline
        time.sleep(0.01)


def test_scheduler_runs_on_schedule_and_retries_failures(project_factory):
    root = project_factory(
        {
            **SHOP,
            "pipes/snap.yaml": COPY + "    schedule: '*/5 * * * *'\n",
            "datasources/snapshot.yaml": SNAPSHOT,
        },
        base=None,
    )
    model, problems = load_project(root)
    assert not problems.errors
    backend = memory_backend()
    try:
        deploy(model, backend)
        backend.execute("INSERT INTO events VALUES (now(), 'u1', 'p', 1), (now(), 'u2', 'p', 1)")
        state = SimpleNamespace(backend=backend, compiled=compile_project(model, Problems()))
        clock = Clock(AT.replace(minute=4, second=0))
        scheduler = Scheduler(state, timeout=30, clock=clock)
        scheduler.refresh()
        # the target is empty: filled at once, not at the first fire
        assert scheduler.status()["snap"]["next_run"] == "2030-01-06T14:04:00+00:00"
        for minute in (4, 5, 5, 6, 10):  # 4 catches up, 5 and 10 fire; 5 runs once
            clock.now = AT.replace(minute=minute, second=0)
            scheduler.tick()
            wait_idle(scheduler)
        assert scalar(backend, "SELECT count() FROM snapshot") == 6
        job = scheduler.status()["snap"]
        assert (job["runs"], job["failures"], job["last_rows"]) == (3, 0, 6)
        assert job["next_run"] == "2030-01-06T14:15:00+00:00"
        # a scheduler that finds the target filled waits for the first fire
        again = Scheduler(state, timeout=30, clock=clock)
        again.refresh()
        assert again.status()["snap"]["next_run"] == "2030-01-06T14:15:00+00:00"
        # a deploy (a new build) that leaves the target empty: filled at once
        backend.execute("TRUNCATE TABLE snapshot")
        scheduler.refresh()  # the same build: not looked at again
        assert scheduler.status()["snap"]["next_run"] == "2030-01-06T14:15:00+00:00"
        state.compiled = compile_project(model, Problems())
        scheduler.refresh()
        assert scheduler.status()["snap"]["next_run"] == "2030-01-06T14:10:00+00:00"
        scheduler.tick()
        wait_idle(scheduler)
        assert scalar(backend, "SELECT count() FROM snapshot") == 2
        assert scheduler.status()["snap"]["next_run"] == "2030-01-06T14:15:00+00:00"

        backend.execute("DROP TABLE snapshot")  # fails at 14:15, logged, tried at 14:20
        for minute in (15, 20):
            clock.now = AT.replace(minute=minute, second=0)
            scheduler.tick()
            wait_idle(scheduler)
        job = scheduler.status()["snap"]
        assert job["failures"] == 2 and "snapshot" in job["last_error"]
        backend.execute(SNAPSHOT_DDL)
        clock.now = AT.replace(minute=25, second=0)
        scheduler.tick()
        wait_idle(scheduler)
        job = scheduler.status()["snap"]
        assert (job["runs"], job["last_error"], job["last_rows"]) == (5, None, 2)
        with pytest.raises(ProjectError):
            run_copy(model, backend, "spend_mv")
    finally:
        drop(backend)


SNAPSHOT_DDL = (
    "CREATE TABLE snapshot (user_id String, total Float64, n UInt64) "
    "ENGINE = MergeTree ORDER BY user_id"
)


SERVER_URL = os.environ.get("RTP_TEST_CLICKHOUSE_URL")


@pytest.fixture(params=["embedded", "server"])
def engine_backend(request):
    if request.param == "embedded":
        backend = memory_backend()
        yield backend
        drop(backend)
        return
    if not SERVER_URL:
        pytest.skip("RTP_TEST_CLICKHOUSE_URL is not set (a ClickHouse server to test on)")
    from rtp.engine.clickhouse import ClickHouseBackend

    base = SERVER_URL.rsplit("/", 1)[0]
    backend = ClickHouseBackend(f"{base}/rtp_test_copy_{uuid.uuid4().hex[:10]}")
    yield backend
    backend.execute(f"DROP DATABASE IF EXISTS `{backend.database}`")
    backend.close()


def test_copy_deadline_is_the_engines(project_factory, engine_backend):
    # 18.16 wants whole seconds for max_execution_time and names no TIMEOUT_EXCEEDED
    slow = COPY.replace(
        "sum(price) AS total",
        "sum(price) + (SELECT toFloat64(sum(number)) FROM numbers(10000000000)) AS total",
    )
    root = project_factory(
        {**SHOP, "pipes/snap.yaml": slow, "datasources/snapshot.yaml": SNAPSHOT}, base=None
    )
    model, problems = load_project(root)
    assert not problems.errors
    backend = engine_backend
    deploy(model, backend)
    backend.execute("INSERT INTO events SELECT now(), 'u1', 'p', 1")
    started = time.monotonic()
    with pytest.raises(EngineError) as caught:
        run_copy(model, backend, "snap", timeout=1)
    assert caught.value.code == "RTP507", caught.value
    assert time.monotonic() - started < 20  # 10^10 rows to sum: minutes without it
    assert scalar(backend, "SELECT count() FROM snapshot") == 0


def test_a_replace_copy_killed_midway_leaves_the_target_and_runs_again(project_factory):
    # what kill -9 can leave: the half-filled new table (killed while inserting), or
    # the old table after the swap (killed between the RENAME and the DROP)
    root = project_factory(
        {
            **SHOP,
            "pipes/snap.yaml": COPY + "    mode: replace\n",
            "datasources/snapshot.yaml": SNAPSHOT,
        },
        base=None,
    )
    model, problems = load_project(root)
    assert not problems.errors
    backend = memory_backend()
    try:
        deploy(model, backend)
        backend.execute("INSERT INTO events VALUES (now(), 'u1', 'p', 1), (now(), 'u2', 'p', 1)")
        assert run_copy(model, backend, "snap") == 2
        for leftover in ("snapshot__rtp_copy", "snapshot__rtp_copy_old"):
            backend.execute(SNAPSHOT_DDL.replace("snapshot", leftover, 1))
            backend.execute(f"INSERT INTO {leftover} VALUES ('half', 1, 1)")
            assert run_copy(model, backend, "snap") == 2
            assert scalar(backend, "SELECT count() FROM snapshot WHERE user_id = 'half'") == 0
            tables = scalar(
                backend,
                "SELECT count() FROM system.tables WHERE database = currentDatabase() "
                "AND name LIKE 'snapshot\\\\_\\\\_rtp%'",
            )
            assert tables == 0, leftover
    finally:
        drop(backend)
