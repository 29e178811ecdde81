"""Each example project under examples/ checks clean and passes its own `rtp test` cases,
through the CLI a user runs (a subprocess, as in CI)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# example -> how many `rtp test` cases it has (all must pass). Add examples here.
EXAMPLES = {
    "travel": 18,
    "betting": 17,
}


def _rtp(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "rtp.cli.main", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_example_checks_clean(name):
    done = _rtp("check", "-p", str(ROOT / "examples" / name))
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.startswith("ok "), done.stdout


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_example_cases_pass(name):
    done = _rtp("test", "-p", str(ROOT / "examples" / name))
    assert done.returncode == 0, done.stdout + done.stderr
    last = done.stdout.strip().splitlines()[-1]
    assert last == f"{EXAMPLES[name]} passed, 0 failed", done.stdout
