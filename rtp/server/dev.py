"""What ``rtp dev`` adds to serving: a test for an empty engine (it loads fixtures then,
see :mod:`rtp.testing.fixtures`), and a watcher that redeploys on every file change and
swaps the new project into the running app.

Problems in the files are printed and the previous project keeps being served, so a
half-typed edit never stops the server.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

from rtp.errors import Problems, RtpError
from rtp.project.load import load_project
from rtp.project.model import Project
from rtp.sql.compose import compile_project

WATCHED = ("rtp.yaml", "datasources", "pipes")


def snapshot(root: Path) -> dict[str, int]:
    """Modification times of the files a project is made of (rtp.yaml, datasources/,
    pipes/); any difference between two snapshots means "redeploy"."""
    out: dict[str, int] = {}
    for name in WATCHED:
        path = root / name
        files = [path] if path.is_file() else sorted(path.rglob("*")) if path.is_dir() else []
        for file in files:
            try:
                out[str(file)] = file.stat().st_mtime_ns
            except OSError:  # deleted between listing and stat
                continue
    return out


def is_empty(project: Project, backend) -> bool:
    """True when no datasource table holds a row (or none exists yet)."""
    for name in project.datasources:
        try:
            _, rows = backend.query(f"SELECT count() FROM `{name}`")
        except RtpError:
            continue
        if rows and int(rows[0][0]):
            return False
    return True


class Reloader:
    """Polls the project's files; on a change, checks, redeploys and swaps the app's
    project. ``deploy(project, backend)`` is ``rtp.deploy.deploy``; ``say`` prints."""

    def __init__(self, root: Path, state, deploy: Callable, say: Callable[[str], None],
                 report: Callable[[RtpError], None] | None = None) -> None:
        self.root = root
        self.state = state
        self.deploy = deploy
        self.say = say
        self.report = report or (lambda error: say(str(error)))
        self.seen = snapshot(root)
        self.reloads = 0

    def poll(self) -> bool | None:
        """Redeploy if a file changed: True when the new project is served, False when
        it has problems (the old one stays), None when nothing changed."""
        now = snapshot(self.root)
        if now == self.seen:
            return None
        self.seen = now
        return self.reload()

    def reload(self) -> bool:
        try:
            project, problems = load_project(self.root)
            compile_project(project, problems)
        except RtpError as exc:
            problems = Problems([exc])
        if problems.errors:
            for error in problems.sorted():
                self.report(error)
            self.say(f"{len(problems.errors)} error(s); still serving the previous version")
            return False
        try:
            with self.state.deploying:  # not while POST /v0/deploy runs
                self.deploy(project, self.state.backend)
                self.state.reload(project)
        except RtpError as exc:
            self.report(exc)
            self.say("deploy failed; still serving the previous version")
            return False
        self.reloads += 1
        self.say(f"redeployed: {len(project.datasources)} datasources, "
                 f"{len(self.state.endpoints)} endpoints")
        return True

    def watch(self, stop: threading.Event, interval: float = 0.5) -> None:
        """Poll until ``stop`` is set; never raises (a failed round is reported)."""
        while not stop.wait(interval):
            try:
                self.poll()
            except Exception as exc:  # keep watching whatever one round did
                self.say(f"reload failed: {exc}")
