"""The repository's root project: it checks clean and its own `rtp test` cases pass."""

from __future__ import annotations

from tests.conftest import ROOT


def test_root_project_checks_clean(cli):
    result = cli("check", "-p", ROOT)
    assert result.exit_code == 0, result.stdout
    assert " 0 error" not in result.stdout  # "ok ..." line, not a summary of problems


def test_root_project_tests_pass(cli):
    result = cli("test", "-p", ROOT)
    assert result.exit_code == 0, result.stdout
    last = result.stdout.splitlines()[-1]
    passed = int(last.split()[0])
    assert last == f"{passed} passed, 0 failed" and passed >= 20
