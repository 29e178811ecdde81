"""The public Tinybird corpus (tests/compat/SOURCES.md) keeps loading: a floor on the
tuning projects' figure, measured as `python -m tests.compat.measure` does."""

from __future__ import annotations

from tests.compat.measure import PROJECTS, held_out, measure

# all 218 datafiles of the tuning projects load and check without errors
FLOOR_OK = 218
# 179 of the 184 held-out ones (the other 5 are the projects' own errors: docs/tinybird.md)
HELD_OUT_OK = 179


def test_tuning_corpus_floor():
    out = held_out()
    results = [measure(p) for p in sorted(PROJECTS.iterdir()) if p.is_dir() and p.name not in out]
    files = sum(r.files for r in results)
    ok = sum(r.ok for r in results)
    assert files >= 200, "the corpus lost files"
    assert sum(r.unread for r in results) == 0, [r.name for r in results if r.unread]
    assert ok >= FLOOR_OK, {r.name: dict(r.groups) for r in results if r.failed}
    # every tuning project passes `rtp check`
    assert all(r.exit_code == 0 for r in results), [r.name for r in results if r.exit_code]


def test_held_out_corpus_floor():
    out = held_out()
    results = [measure(p) for p in sorted(PROJECTS.iterdir()) if p.name in out]
    assert sum(r.files for r in results) >= 184, "the corpus lost files"
    assert sum(r.ok for r in results) >= HELD_OUT_OK, {r.name: dict(r.groups) for r in results}


def test_corpus_endpoint_calls():
    """Every endpoint of two tuning projects answers over HTTP as Tinybird would:
    tinynest's group and join on JSON paths, interactive-leaderboard's parameters without
    defaults (Tinybird's 400, then 200 with a value)."""
    from tests.compat.calls import measure_calls

    for name, calls in (("tinynest", 53), ("interactive-leaderboard", 11)):
        result = measure_calls(PROJECTS / name)
        assert result.deploy_exit == 0, name
        assert (result.calls, result.answered) == (calls, calls), (name, dict(result.groups))
