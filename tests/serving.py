"""`rtp serve` as the process a user runs, for the end-to-end tests: one way to start
it, read the admin token it prints, and wait until it answers."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}


def deploy(root: Path, env: dict | None = None) -> None:
    """`rtp deploy -p root` as a user runs it; fails with its output unless it exits 0."""
    out = subprocess.run(
        [sys.executable, "-m", "rtp.cli.main", "deploy", "-p", str(root)],
        env=env or ENV,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stdout + out.stderr


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_healthy(base: str, proc: subprocess.Popen, timeout: float = 30) -> httpx.Response:
    """The server's first healthy /healthz answer; fails when the process dies or it is
    not healthy within ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            r = httpx.get(f"{base}/healthz", timeout=2)
            if r.status_code == 200:
                return r
        except httpx.TransportError:
            pass
        assert proc.poll() is None, proc.stderr.read()
        assert time.monotonic() < deadline, "server did not start"
        time.sleep(0.1)


@dataclass
class Serving:
    proc: subprocess.Popen
    base: str  # http://127.0.0.1:<port>
    admin: str  # the admin token `rtp serve` prints on its first line


@contextlib.contextmanager
def rtp_serve(
    root: Path, *args: str, env: dict | None = None, cwd: Path | None = None, timeout: float = 30
) -> Iterator[Serving]:
    """`rtp serve -p root --port <free> *args` until the block ends (then SIGTERM, and
    SIGKILL if it has not stopped 20 s later). ``timeout``: seconds to become healthy."""
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "rtp.cli.main",
            "serve",
            "-p",
            str(root),
            "--port",
            str(port),
            *args,
        ],
        env=env or ENV,
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        admin = proc.stdout.readline().strip()
        assert admin.startswith("rtp_"), admin + proc.stderr.read()
        base = f"http://127.0.0.1:{port}"
        wait_healthy(base, proc, timeout)
        yield Serving(proc, base, admin)
    finally:
        stop(proc)


def stop(proc: subprocess.Popen) -> None:
    """SIGTERM, then SIGKILL if the process has not stopped 20 s later."""
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def copy_root_project(dest: Path) -> Path:
    """The root project's files (not its .rtp/ data) in ``dest``."""
    shutil.copy2(ROOT / "rtp.yaml", dest / "rtp.yaml")
    for name in ("datasources", "pipes", "connections", "fixtures", "examples/storefront"):
        shutil.copytree(ROOT / name, dest / name)
    return dest
