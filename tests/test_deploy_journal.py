"""The deploy journal in-process on real in-memory ClickHouse: a crash (simulated by the
step hook raising) after EVERY step of a rebuild, then ``deploy`` finishes the journaled
plan; plus the gates around an unfinished journal. tests/test_deploy_crash.py does the
same through a real `rtp deploy` process killed for real."""

from __future__ import annotations

import pytest
from deploy_helpers import drop, memory_backend
from test_deploy_crash import CHECKS, V1, V2

from rtp.deploy import apply, deploy, journal, plan, resume
from rtp.deploy.health import missing_views
from rtp.deploy.state import read_state
from rtp.errors import EngineError
from rtp.project import load_project


class Crash(BaseException):
    """Stands for kill -9: nothing after the step runs, no cleanup is attempted."""


def models(project_factory, tmp_path):
    v1, _ = load_project(project_factory(V1, base=None))
    (tmp_path / "v2").mkdir()
    files = {**V1, **V2}
    import textwrap

    for rel, text in files.items():
        path = tmp_path / "v2" / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    v2, problems = load_project(tmp_path / "v2")
    assert not problems.errors, [str(p) for p in problems]
    return v1, v2


def snapshot(backend) -> dict:
    _, tables = backend.query(
        "SELECT name, engine, replaceRegexpAll(create_table_query, ' UUID \\'[^\\']+\\'', '') "
        "FROM system.tables WHERE database = currentDatabase() AND name != '_rtp_journal' "
        "ORDER BY name"
    )
    tables = [[n, e, q.replace(backend.database, "DB")] for n, e, q in tables]
    state = {k: (r.kind, r.hash, r.spec) for k, r in read_state(backend).items()}
    targets = {k: backend.query(t)[1] for k, (t, _) in CHECKS.items()}
    scratch = {k: backend.query(s)[1] for k, (_, s) in CHECKS.items()}
    return {
        "tables": tables,
        "state": state,
        "targets": targets,
        "scratch": scratch,
        "events": backend.query("SELECT count(), sum(price) FROM events")[1],
    }


def setup(v1):
    backend = memory_backend()
    deploy(v1, backend)
    backend.execute(
        "INSERT INTO events SELECT toDateTime('2030-01-01 00:00:00') + number, "
        "concat('u', toString(number % 7)), concat('p', toString(number % 11)), "
        "(number % 13) * 1.5 FROM numbers(300)"
    )
    return backend


def test_crash_after_every_step_is_finished_by_the_next_deploy(
    project_factory, tmp_path, monkeypatch
):
    v1, v2 = models(project_factory, tmp_path)
    clean = setup(v1)
    try:
        deploy(v2, clean)
        expected = snapshot(clean)
    finally:
        drop(clean)
    assert expected["targets"] == expected["scratch"] and expected["events"][0][0] == 300
    n, crashed = 0, []
    while True:
        n += 1
        backend = setup(v1)
        try:
            count = iter(range(1, 10_000))

            def hook(n=n, count=count):
                if next(count) == n:
                    raise Crash

            monkeypatch.setattr(journal, "after_step", hook)
            try:
                deploy(v2, backend)
            except Crash:
                crashed.append(n)
            else:
                break
            finally:
                monkeypatch.undo()
            assert journal.find_unfinished(backend) is not None
            if n == 3:  # nothing new is applied on top of an unfinished deploy
                with pytest.raises(EngineError) as err:
                    apply(plan(v2, backend), backend, allow_destructive=True)
                assert err.value.code == "RTP509"
            p = deploy(v2, backend)  # no allow_destructive: the journal's plan runs
            assert p.pending == [], (n, [c.describe() for c in p.pending])
            assert snapshot(backend) == expected, f"crash after step {n}"
        finally:
            drop(backend)
    assert crashed == list(range(1, 34))


def test_missing_views_and_resume_reports(project_factory, tmp_path, monkeypatch):
    v1, v2 = models(project_factory, tmp_path)
    backend = setup(v1)
    try:
        assert missing_views(v1, backend) == {}
        count = iter(range(1, 100))
        monkeypatch.setattr(
            journal,
            "after_step",
            lambda: (_ for _ in ()).throw(Crash) if next(count) == 2 else None,
        )
        with pytest.raises(Crash):
            deploy(v2, backend)
        monkeypatch.undo()
        # both views reading events were dropped before its rebuild
        assert missing_views(v2, backend) == {"events": ["buyers_mv", "product_mv", "spend_mv"]}
        seen = []
        finished = resume(backend, announce=lambda u: seen.append(u.describe()))
        assert finished is not None and "stopped at step 2 of 33" in seen[0]
        assert "rebuild table events" in seen[0]
        assert resume(backend) is None
        deploy(v2, backend)
        assert missing_views(v2, backend) == {}
    finally:
        drop(backend)
