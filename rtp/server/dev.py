"""What ``rtp dev`` adds to serving: a test for an empty engine (it loads fixtures then,
see :mod:`rtp.testing.fixtures`), and a watcher that redeploys on every file change and
swaps the new project into the running app.

Problems in the files are printed and the previous project keeps being served, so a
half-typed edit never stops the server.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from rtp.errors import RtpError
from rtp.ops.build import ProjectInvalid
from rtp.ops.deploy import reload
from rtp.project.load import SKIP_DIRS
from rtp.project.model import Project

if TYPE_CHECKING:
    from rtp.engine import Backend

# what a project is read from (rtp.project.load): rtp.yaml, YAML under datasources/,
# pipes/, connections/, and Tinybird's files anywhere (Forward's endpoints/, copies/...)
SUFFIXES = (".yaml", ".yml", ".datasource", ".pipe", ".connection", ".incl")
NAMES = ("tinyb", ".tinyb")
QUIET_MS = 100  # a save is often several writes (temp file, rename): wait for quiet


def relevant(root: Path, path: Path, skip: tuple[str, ...] = ("tests", "fixtures")) -> bool:
    """Whether a change to ``path`` can change the project: a project file, not under a
    hidden folder (``.rtp/`` with the engine's data, ``.git/``), a tool's folder
    (``__pycache__``, ``node_modules``) or ``skip`` (the tests and fixtures folders)."""
    try:
        parts = path.relative_to(root).parts
    except ValueError:
        return False
    if not parts or (parts[0] in skip and len(parts) > 1):
        return False
    if any(p.startswith(".") or p in SKIP_DIRS for p in parts[:-1]):
        return False
    return path.suffix in SUFFIXES or parts[-1] in NAMES


def snapshot(root: Path, skip: tuple[str, ...] = ("tests", "fixtures")) -> dict[str, int]:
    """Modification times of the files the project is made of (see :func:`relevant`);
    any difference between two snapshots means "redeploy"."""
    out: dict[str, int] = {}
    for folder, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if not d.startswith(".") and d not in SKIP_DIRS]
        for name in files:
            file = Path(folder) / name
            if not relevant(root, file, skip):
                continue
            try:
                out[str(file)] = file.stat().st_mtime_ns
            except OSError:  # deleted between listing and stat
                continue
    return out


def is_empty(project: Project, backend: Backend) -> bool:
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
    """Watches the project's files; on a change, builds, checks, redeploys and swaps the
    app's project (:func:`rtp.ops.deploy.reload`, the gates of ``rtp deploy``).
    ``say`` prints."""

    def __init__(
        self,
        root: Path,
        state,
        say: Callable[[str], None],
        report: Callable[[RtpError], None] | None = None,
    ) -> None:
        self.root = root
        self.state = state
        self.say = say
        self.report = report or (lambda error: say(str(error)))
        self.seen = snapshot(root, self.skip())
        self.reloads = 0

    def poll(self) -> bool | None:
        """Redeploy if a file changed: True when the new project is served, False when
        it has problems (the old one stays), None when nothing changed."""
        now = snapshot(self.root, self.skip())
        if now == self.seen:
            return None
        self.seen = now
        return self.reload()

    def reload(self) -> bool:
        try:
            with self.state.deploying:  # not while POST /v0/deploy runs
                try:
                    built, _ = reload(self.root, self.state.backend, self.swap)
                finally:  # a deploy stopped half-way may have dropped views
                    self.state.check_views()
        except ProjectInvalid as exc:
            for error in exc.problems:
                self.report(error)
            self.say(f"{len(exc.problems)} error(s); still serving the previous version")
            return False
        except RtpError as exc:
            self.report(exc)
            self.say("deploy failed; still serving the previous version")
            return False
        self.reloads += 1
        self.say(
            f"redeployed: {len(built.project.datasources)} datasources, "
            f"{len(self.state.endpoints)} endpoints"
        )
        return True

    def swap(self, built) -> None:
        """Serve ``built`` from now on; say what the Kafka consumers did to follow it
        (:meth:`rtp.server.app.ServerState.follow_consumers`)."""
        for verb, names in self.state.reload(built).items():
            if names:
                self.say(f"Kafka consumers {verb}: {', '.join(sorted(names))}")

    def skip(self) -> tuple[str, ...]:
        settings = self.state.project.settings
        return (settings.tests_dir.strip("/"), settings.fixtures_dir.strip("/"))

    def watch(self, stop: threading.Event, interval: float = 0.5) -> None:
        """Redeploy on every change the OS reports under the project's folder (watchfiles:
        inotify, FSEvents...; polling every ``interval`` seconds where there are none),
        changes within ``QUIET_MS`` of each other taken as one, until ``stop`` is set.
        Never raises (a failed round is reported)."""
        import watchfiles

        root = self.root.resolve()

        def project_file(change, path: str) -> bool:
            return relevant(root, Path(path), self.skip())

        polling = None  # watchfiles decides; True after the OS refused file events
        while not stop.is_set():
            try:
                for _changes in watchfiles.watch(
                    root,
                    watch_filter=project_file,
                    stop_event=stop,
                    step=QUIET_MS,
                    debounce=1600,
                    force_polling=polling,
                    poll_delay_ms=int(interval * 1000),
                    raise_interrupt=False,
                    rust_timeout=1000,
                ):
                    self._round()
            except (OSError, RuntimeError) as exc:  # e.g. out of inotify watches
                if polling:
                    self.say(f"watching failed: {exc}")
                    return
                self.say(f"file events unavailable ({exc}); polling every {interval:g} s")
                polling = True

    def _round(self) -> None:
        try:
            self.seen = snapshot(self.root, self.skip())
            self.reload()
        except Exception as exc:  # keep watching whatever one round did
            self.say(f"reload failed: {exc}")
