"""`python -m bench.overhead` (the server's own time per call, no-op engine) runs and
prints its three figures."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_overhead_bench_prints_its_figures():
    done = subprocess.run(
        [sys.executable, "-m", "bench.overhead", "20"],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    figures = dict(re.findall(r"^(\w+)\s+p50 ([\d.]+) ms", done.stdout, re.M))
    assert set(figures) == {"compose", "request", "cached"}, done.stdout
    # a cached answer skips composition and the worker thread
    assert float(figures["cached"]) < float(figures["request"])
