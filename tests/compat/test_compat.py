"""The public Tinybird corpus (tests/compat/SOURCES.md) keeps loading: a floor on the
tuning projects' figure, measured as `python -m tests.compat.measure` does."""

from __future__ import annotations

from tests.compat.measure import PROJECTS, held_out, measure

# all 218 datafiles of the tuning projects load and check without errors
FLOOR_OK = 218


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
