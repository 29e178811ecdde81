"""Copy pipes: cron matching and the scheduler loop on a real engine."""

from __future__ import annotations

import datetime as dt
import threading

import pytest
from deploy_helpers import SHOP, drop, memory_backend, scalar

from rtp.deploy import deploy
from rtp.deploy.copy import cron_matches, run_copy, run_schedules
from rtp.errors import ProjectError
from rtp.project import load_project

AT = dt.datetime(2030, 1, 6, 14, 30)  # a Sunday


@pytest.mark.parametrize(("expr", "expected"), [
    ("* * * * *", True), ("30 14 * * *", True), ("*/15 * * * *", True),
    ("*/7 * * * *", False), ("0 * * * *", False), ("25-35 14 6 1 0", True),
    ("30 14 * * 7", True), ("30 14 * * 1-5", False), ("0,30 9,14 * * *", True),
])
def test_cron_matches(expr, expected):
    assert cron_matches(expr, AT) is expected


def test_cron_rejects_malformed():
    with pytest.raises(ValueError):
        cron_matches("* * *", AT)


def test_scheduler_appends_on_schedule(project_factory):
    copy = """
        nodes:
          - name: snap
            sql: SELECT user_id, sum(price) AS total, count() AS n FROM events GROUP BY user_id
        type: copy
        target: snapshot
        schedule: "*/5 * * * *"
    """
    snapshot = SHOP["datasources/spend.yaml"].replace("SummingMergeTree", "MergeTree")
    model, problems = load_project(project_factory(
        {**SHOP, "pipes/snap.yaml": copy, "datasources/snapshot.yaml": snapshot}, base=None))
    assert not problems.errors
    backend = memory_backend()
    try:
        deploy(model, backend)
        backend.execute("INSERT INTO events VALUES (now(), 'u1', 'p', 1), (now(), 'u2', 'p', 1)")
        ticks = iter([AT.replace(minute=5), AT.replace(minute=5), AT.replace(minute=6),
                      AT.replace(minute=10)])
        stop = threading.Event()

        def clock():
            try:
                return next(ticks)
            except StopIteration:
                stop.set()
                return AT.replace(minute=10)

        stop_wait = stop.wait
        stop.wait = lambda timeout: stop_wait(0)  # no real sleeping in the test
        run_schedules(model, backend, stop, clock=clock)
        # minutes 5 and 10 match, 6 doesn't; minute 5 runs once though seen twice
        assert scalar(backend, "SELECT count() FROM snapshot") == 4
        with pytest.raises(ProjectError):
            run_copy(model, backend, "spend_mv")
    finally:
        drop(backend)
