"""Tooling: wall time of whole ``rtp`` processes (check, deploy from empty, deploy
unchanged, test) on the root project and on generated projects of N pipes.

The baseline ("engine") is a process that only starts Python, loads chDB and runs
``SELECT 1``: the floor any command that touches the engine pays.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.common import copy_root_project, env, rtp_cmd
from bench.generated_project import write_project


def timed(cmd: list[str], runs: int, ok=(0,), before=None) -> float:
    """Best of ``runs`` wall times; ``before`` (if given) runs untimed before each."""
    best = float("inf")
    for _ in range(runs):
        if before:
            before()
        t = time.perf_counter()
        out = subprocess.run(cmd, capture_output=True, text=True, env=env())
        elapsed = time.perf_counter() - t
        if out.returncode not in ok:
            raise RuntimeError(f"{' '.join(cmd)} failed:\n{out.stdout}\n{out.stderr}")
        best = min(best, elapsed)
    return best


def measure(root: Path, runs: int, with_test: bool) -> dict:
    def wipe() -> None:
        shutil.rmtree(root / ".rtp", ignore_errors=True)

    out = {
        "check_s": timed(rtp_cmd("check", "-p", str(root)), runs),
        "deploy_empty_s": timed(rtp_cmd("deploy", "-p", str(root)), runs, before=wipe),
    }
    out["deploy_unchanged_s"] = timed(rtp_cmd("deploy", "-p", str(root)), runs)
    if with_test:
        out["test_s"] = timed(rtp_cmd("test", "-p", str(root)), runs)
    return out


def run(*, sizes=(50, 200), runs: int = 1, log=print) -> dict:
    baseline = timed(
        [sys.executable, "-c", "import chdb; chdb.connect(':memory:').query('SELECT 1')"],
        max(runs, 2),
    )
    result: dict = {"engine_start_s": baseline, "runs_best_of": runs, "projects": {}}
    with tempfile.TemporaryDirectory() as tmp:
        root = copy_root_project(Path(tmp) / "root")
        result["projects"]["root"] = measure(root, runs, with_test=True)
        log("  tooling: root project done")
        for n in sizes:
            gen = write_project(Path(tmp) / f"gen{n}", n)
            result["projects"][f"generated_{n}_pipes"] = measure(gen, runs, with_test=False)
            log(f"  tooling: {n} pipes done")
    for figures in result["projects"].values():
        for key in list(figures):
            figures[key.replace("_s", "_ratio")] = figures[key] / baseline
    return result
