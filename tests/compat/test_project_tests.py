"""The corpus projects' own tests (`tests/*.yaml`, as their authors run them with
`tb test run`), run unchanged by `rtp test` through the CLI.

The fixtures the tests were written against are in the corpus too
(`projects/<name>/fixtures/`, copied from the same commit, SOURCES.md).
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

HERE = Path(__file__).parent
PROJECTS = HERE / "projects"


WITH_TESTS = sorted(p.name for p in PROJECTS.iterdir() if (p / "tests").is_dir())


def test_corpus_has_tests():
    assert WITH_TESTS == ["logs-explorer-template"]  # the 4 Forward test files of the corpus


@pytest.mark.parametrize("name", WITH_TESTS)
def test_project_tests_pass(name, tmp_path, cli):
    root = tmp_path / name
    shutil.copytree(PROJECTS / name, root)
    assert list((root / "fixtures").iterdir()), f"{name} has no fixtures in the corpus"
    result = cli("test", "-p", root)
    out = result.stdout + result.stderr
    summary = out.strip().splitlines()[-1]
    assert result.exit_code == 0, out
    assert re.fullmatch(r"\d+ passed, 0 failed", summary), summary
