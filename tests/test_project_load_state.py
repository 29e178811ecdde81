"""Loading a project keeps no state between loads: `rtp dev` reloads on every edit, and
its reloader thread loads while a deploy thread may be loading too."""

from __future__ import annotations

import gc
import threading

from rtp.project.load import load_project
from tests.conftest import ROOT


def _positions(project):
    """Every column's and node's place in its file: what later errors point at."""
    out = {}
    for ds in project.datasources.values():
        for col in ds.columns:
            loc = ds.loc(*col.path, "type")
            out[(ds.name, col.name)] = (loc.file, loc.line, loc.column, loc.length)
    for pipe in project.pipes.values():
        for node in pipe.nodes:
            out[(pipe.name, node.name)] = (node.origin.file, node.origin.line, node.origin.column)
    return out


def test_loading_the_root_project_again_and_again_keeps_no_objects():
    load_project(ROOT)  # warm caches (imports, regexes, jinja)
    load_project(ROOT)
    gc.collect()
    before = len(gc.get_objects())
    for _ in range(50):
        project, problems = load_project(ROOT)
    assert list(problems) == []
    del project, problems
    gc.collect()
    grown = len(gc.get_objects()) - before
    # a process-wide YAML constructor kept every parsed node: ~1,650 objects per load of
    # the root project, 82,800 after 50 loads; per-load loaders leave nothing behind
    assert grown < 500, f"{grown} objects left after 50 loads"


def test_two_threads_loading_at_once_get_the_right_positions():
    expected = _positions(load_project(ROOT)[0])
    assert len(expected) > 20
    results: list[dict] = []
    errors: list[BaseException] = []
    start = threading.Barrier(2)

    def work():
        try:
            start.wait()
            for _ in range(10):
                results.append(_positions(load_project(ROOT)[0]))
        except BaseException as exc:  # reported below, not lost in the thread
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert errors == []
    assert len(results) == 20
    assert all(r == expected for r in results)


def test_an_unknown_yaml_tag_is_a_located_error_not_a_traceback(project_factory, cli):
    root = project_factory({"datasources/events.yaml": "columns: !foo abc\n"})
    result = cli("check", "-p", root)
    assert result.exit_code == 1
    assert "datasources/events.yaml:1:10" in result.stdout
    assert "RTP101" in result.stdout
