"""``rtp serve --workers N``: N server processes on one listening socket.

This process binds the port, then forks the workers (``fork``: each inherits the built
project, and opens its own connections to the target after the fork). The kernel spreads
connections over the workers that accept on the shared socket. Worker 0 runs the
scheduled copy pipes (when ``schedules`` is on) and the Kafka consumers; the others only
answer requests, so a copy or a consumer never runs N times. Tokens and deploys are
shared through the target (rtp.server.watch), so it does not matter which worker a
request reaches.

The parent only supervises: SIGTERM or SIGINT is passed on to every worker (each stops
gracefully) and the parent exits when they have; a worker that dies otherwise is started
again after a second, with the same number (so a dead worker 0 brings the schedules back).
If the parent itself is killed outright, Linux sends every worker SIGTERM.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import sys
import time
from dataclasses import replace

from rtp.cli.output import console, err_console
from rtp.ops.build import Build
from rtp.server.settings import ServerSettings

RESTART_AFTER = 1.0  # seconds before a worker that died is started again


def listen(host: str, port: int) -> socket.socket:
    """The shared listening socket (inherited by every worker)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def serve_workers(
    built: Build, target: str | None, settings: ServerSettings, host: str, port: int
) -> None:
    """Run ``settings.workers`` workers until SIGTERM/SIGINT (see module doc)."""
    sock = listen(host, port)
    stopping = False
    children: dict[int, int] = {}  # pid -> worker number

    def stop(signum, frame):
        nonlocal stopping
        stopping = True
        for pid in list(children):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    for number in range(settings.workers):
        children[_fork(number, built, target, settings, sock)] = number
    url = f"http://{host}:{port}"
    console.print(
        f"serving [bold]{built.project.name}[/bold] on {url} "
        f"({len(built.project.endpoints)} endpoints; {settings.workers} worker processes; "
        f"docs at {url}/docs)"
    )
    while children:
        try:
            pid, status = os.wait()
        except ChildProcessError:
            break
        number = children.pop(pid, None)
        if number is None or stopping:
            continue
        err_console.print(
            f"[red]worker {number} (pid {pid}) ended ({_how(status)}); starting it again[/red]"
        )
        time.sleep(RESTART_AFTER)
        if not stopping:
            children[_fork(number, built, target, settings, sock)] = number
    sock.close()


def _exit(signum, frame):
    raise SystemExit(0)  # after uvicorn's graceful shutdown, so the worker's cleanup runs


def _end_with_parent() -> None:
    """Linux: SIGTERM this worker when the parent dies, even by SIGKILL, so no worker is
    left serving without its supervisor (elsewhere: nothing)."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes

    pr_set_pdeathsig = 1
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)
    if os.getppid() == 1:  # the parent died before prctl: nothing will send it
        raise SystemExit(0)


def _how(status: int) -> str:
    if os.WIFSIGNALED(status):
        return f"signal {os.WTERMSIG(status)}"
    return f"exit code {os.waitstatus_to_exitcode(status)}"


def _fork(
    number: int, built: Build, target: str | None, settings: ServerSettings, sock: socket.socket
) -> int:
    pid = os.fork()
    if pid:
        return pid
    code = 0
    try:
        # not the parent's handlers: a SIGTERM while the worker starts ends it
        signal.signal(signal.SIGTERM, _exit)
        signal.signal(signal.SIGINT, _exit)
        _end_with_parent()
        _worker(number, built, target, settings, sock)
    except BaseException as exc:  # noqa: BLE001 — a worker reports and exits, never returns
        if not isinstance(exc, SystemExit | KeyboardInterrupt):
            err_console.print(f"[red]worker {number}: {exc}[/red]")
            code = 1
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def _worker(
    number: int, built: Build, target: str | None, settings: ServerSettings, sock: socket.socket
) -> None:
    import uvicorn

    from rtp.engine.target import open_backend
    from rtp.server import create_app

    backend = open_backend(built.project, target, command=f"rtp serve (worker {number})")
    try:
        leader = number == 0
        app = create_app(
            built,
            backend,
            replace(settings, schedules=settings.schedules and leader, consumers=leader),
        )
        server = uvicorn.Server(
            uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on")
        )
        with contextlib.suppress(SystemExit, KeyboardInterrupt):
            server.run(sockets=[sock])
    finally:
        backend.close()
