"""Materialized views: a changed query is redeployed while rows keep arriving."""

from __future__ import annotations

import threading

from deploy_helpers import SHOP, drop, memory_backend, scalar

from rtp.deploy import deploy, plan
from rtp.project import load_project


def _model(project_factory, mv_sql: str):
    mv = SHOP["pipes/spend_mv.yaml"].replace(
        "SELECT user_id, sum(price) AS total, count() AS n FROM events GROUP BY user_id", mv_sql
    )
    model, problems = load_project(project_factory({**SHOP, "pipes/spend_mv.yaml": mv}, base=None))
    assert not problems.errors
    return model


def test_changed_view_redeploys_without_losing_or_doubling_rows(project_factory):
    backend = memory_backend()
    try:
        deploy(
            _model(
                project_factory,
                "SELECT user_id, sum(price) AS total, count() AS n FROM events GROUP BY user_id",
            ),
            backend,
        )
        stop = threading.Event()
        inserted = [0]

        def insert_forever():
            i = 0
            while not stop.is_set():
                backend.execute(
                    "INSERT INTO events SELECT now(), concat('u', "
                    f"toString(number % 7)), 'p', 1 FROM numbers({i % 5 + 1})"
                )
                inserted[0] += i % 5 + 1
                i += 1

        writer = threading.Thread(target=insert_forever)
        writer.start()
        try:
            while inserted[0] < 50:  # rows before the redeploy, to be backfilled
                stop.wait(0.01)
            changed = _model(
                project_factory,
                "SELECT user_id, sum(price) * 2 AS total, "
                "count() AS n FROM events GROUP BY user_id",
            )
            result = deploy(changed, backend)
            before = inserted[0]
            while inserted[0] < before + 50:  # rows after it, through the new view
                stop.wait(0.01)
        finally:
            stop.set()
            writer.join()
        assert [c.action for c in result.pending] == ["rebuild"]
        assert scalar(backend, "SELECT count() FROM events") == inserted[0]
        # every event counted exactly once, all with the new query (price 1 doubled)
        assert scalar(backend, "SELECT sum(n) FROM spend") == inserted[0]
        assert scalar(backend, "SELECT sum(total) FROM spend") == 2.0 * inserted[0]
        assert {c.action for c in plan(changed, backend).changes} == {"no-op"}
    finally:
        drop(backend)


def test_changed_view_without_populate_is_swapped(project_factory):
    backend = memory_backend()
    try:
        base = {
            **SHOP,
            "pipes/spend_mv.yaml": SHOP["pipes/spend_mv.yaml"].replace(
                "populate: true", "populate: false"
            ),
        }
        model, _ = load_project(project_factory(base, base=None))
        deploy(model, backend)
        backend.execute("INSERT INTO events VALUES (now(), 'u1', 'p1', 1)")
        base["pipes/spend_mv.yaml"] = base["pipes/spend_mv.yaml"].replace(
            "sum(price) AS total", "sum(price) * 10 AS total"
        )
        model, _ = load_project(project_factory(base, base=None))
        assert [c.action for c in deploy(model, backend).pending] == ["recreate"]
        backend.execute("INSERT INTO events VALUES (now(), 'u1', 'p1', 1)")
        assert scalar(backend, "SELECT sum(total) FROM spend") == 11.0
    finally:
        drop(backend)
