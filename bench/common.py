"""Shared pieces: machine and versions, statistics, a project copy, the server process."""

from __future__ import annotations

import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parent.parent


def machine() -> dict:
    model = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        load = os.getloadavg()[0]
    except OSError:
        load = None
    return {
        "cores": os.cpu_count(),
        "cpu": model,
        "platform": platform.platform(),
        "load_average_1m_at_start": load,
    }


def versions() -> dict:
    import chdb

    import rtp

    engine = chdb.query("SELECT version()", "TabSeparated").bytes().decode().strip()
    return {
        "rtp": rtp.__version__,
        "chdb": chdb.__version__,
        "clickhouse": engine,
        "python": platform.python_version(),
    }


def pct(samples: list[float], p: float) -> float:
    """The p-th percentile (0..100) of ``samples``, nearest rank."""
    if not samples:
        return 0.0
    s = sorted(samples)
    k = max(0, min(len(s) - 1, int(round(p / 100 * len(s) + 0.5)) - 1))
    return s[k]


def latency_summary(samples_s: list[float], elapsed_s: float) -> dict:
    """p50/p99 in ms and throughput in requests/s."""
    return {
        "requests": len(samples_s),
        "p50_ms": pct(samples_s, 50) * 1000,
        "p99_ms": pct(samples_s, 99) * 1000,
        "throughput_rps": len(samples_s) / elapsed_s if elapsed_s else 0.0,
    }


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def copy_root_project(dest: Path) -> Path:
    """The repository's root project (files only, no data) in ``dest``."""
    dest.mkdir(parents=True, exist_ok=True)
    shutil.copy(REPO / "rtp.yaml", dest / "rtp.yaml")
    for folder in ("datasources", "pipes", "connections", "fixtures", "examples/storefront"):
        shutil.copytree(REPO / folder, dest / folder, dirs_exist_ok=True)
    (dest / "tests").mkdir(exist_ok=True)
    for case in (REPO / "tests").glob("*.yaml"):  # rtp's cases, not the pytest suite
        shutil.copy(case, dest / "tests" / case.name)
    return dest


def rtp_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "rtp.cli.main", *args]


def env() -> dict:
    e = dict(os.environ)
    e["PYTHONPATH"] = str(REPO) + os.pathsep + e.get("PYTHONPATH", "")
    return e


class Server:
    """``rtp serve --no-auth`` on a free port, as a separate process."""

    def __init__(self, project: Path, extra: tuple[str, ...] = ()):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = open(project / "serve.log", "ab")  # noqa: SIM115
        self.proc = subprocess.Popen(
            rtp_cmd("serve", "--no-auth", "--port", str(self.port), "-p", str(project), *extra),
            stdout=self.log,
            stderr=subprocess.STDOUT,
            env=env(),
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"rtp serve exited: see {project / 'serve.log'}")
            try:
                if httpx.get(self.url + "/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError("rtp serve did not start in 60 s")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()
