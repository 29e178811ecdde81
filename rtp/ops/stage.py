"""The version lifecycle: ``stage``, ``promote``, ``rollback``, ``discard``, ``versions``.

The CLI (``rtp deploy --stage|promote|rollback|discard|ls``) and ``POST /v0/deploy``
(which the CLI uses while a server holds the embedded engine) call these. Each holds the
target's deploy lock (:mod:`rtp.deploy.lock`), first finishes an interrupted deploy from
its journal, then applies one journaled plan (:mod:`rtp.deploy.stage`).
"""

from __future__ import annotations

import fnmatch
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

from rtp.deploy import apply, resume
from rtp.deploy import versions as v
from rtp.deploy.cluster import versions_for_cluster
from rtp.deploy.lock import held
from rtp.deploy.plan import Change, Plan
from rtp.deploy.stage import (
    changed_set,
    live_manifest,
    retire_change,
    stage_manifest,
    stage_plan,
    switch_plan,
)
from rtp.engine import Backend
from rtp.engine.paths import STATE_DIR, versions_dir
from rtp.errors import EngineError
from rtp.ops.build import Build, build
from rtp.project.model import Project


@dataclass
class Lifecycle:
    """What a lifecycle command did; ``as_dict`` is the HTTP answer."""

    action: str
    target: str
    version: int | None = None  # the version staged, made live or dropped
    changed: list[str] = field(default_factory=list)
    applied: list[str] = field(default_factory=list)
    resumed: str | None = None
    message: str = ""

    def as_dict(self) -> dict:
        return dict(self.__dict__)


Progress = Callable[[Change], None] | None


def stage(
    built: Build,
    backend: Backend,
    *,
    command: str = "rtp deploy --stage",
    break_lock: bool = False,
    progress: Progress = None,
) -> Lifecycle:
    """Build ``built``'s project as a new version next to live; nothing live changes.

    Raises ProjectInvalid RTP109 for a project with errors, EngineError RTP517 when a
    version is staged already, RTP515 when another deploy holds the target, RTP503 when
    a step fails (journaled: the next deploy command finishes it)."""
    built.require_valid()

    def body(found: list[v.Version], target: str) -> Lifecycle:
        _no_staging(found, "stage another")
        changed = changed_set(built.project, built.compiled, backend)
        if not changed:
            return Lifecycle("stage", target, None, [], [], message="nothing to stage")
        live = v.find(found, v.LIVE)
        if live is None:  # the first version: what is deployed now
            live = v.Version(1, v.LIVE, 0, "")
            v.write(backend, 1, v.LIVE)
        number = max([x.number for x in found] + [live.number]) + 1
        manifest = stage_manifest(built.project, built.compiled, backend, changed, live.number)
        manifest["files"] = snapshot(built.root)
        v.write(backend, number, v.BUILDING, live.number, manifest)
        plan = stage_plan(built.project, built.compiled, backend, number, manifest)
        done = _apply(plan, backend, progress, built.project)
        return Lifecycle("stage", target, number, changed, done, message=f"staged version {number}")

    return _locked("stage", backend, command, break_lock, progress, body)


def promote(
    backend: Backend,
    *,
    keep: int = 2,
    command: str = "rtp deploy promote",
    break_lock: bool = False,
    progress: Progress = None,
) -> Lifecycle:
    """Make the staged version live; the live one is kept as previous (``keep`` 2) and
    older kept versions are dropped. Raises EngineError RTP516 when nothing is staged,
    RTP517 when it was staged on another live version, RTP515, RTP503."""

    def body(found: list[v.Version], target: str) -> Lifecycle:
        staged = v.find(found, v.STAGING)
        if staged is None:
            raise EngineError(
                "no version is staged", code="RTP516", hint="run `rtp deploy --stage` first"
            )
        live = v.find(found, v.LIVE)
        if live is None or live.number != staged.base:
            raise EngineError(
                f"version {staged.number} was staged on version {staged.base}, but "
                f"{'no version' if live is None else f'version {live.number}'} is live",
                code="RTP517",
                hint="run `rtp deploy discard`, then `rtp deploy --stage` again",
            )
        retire = [x for x in found if x.status == v.PREVIOUS]
        done = _switch(backend, live, staged, progress, keep=keep, retire=retire)
        return Lifecycle(
            "promote",
            target,
            staged.number,
            staged.changed,
            done,
            message=f"version {staged.number} is live; version {live.number} is kept for rollback"
            if keep > 1
            else f"version {staged.number} is live",
        )

    return _locked("promote", backend, command, break_lock, progress, body)


def rollback(
    backend: Backend,
    *,
    command: str = "rtp deploy rollback",
    break_lock: bool = False,
    progress: Progress = None,
) -> Lifecycle:
    """Make the previous version live again (nothing rebuilt: names are swapped back);
    the rolled-back one is kept as previous. Raises EngineError RTP516 with no previous
    version, RTP517 while a version is staged, RTP515, RTP503."""

    def body(found: list[v.Version], target: str) -> Lifecycle:
        _no_staging(found, "roll back")
        previous, live = v.find(found, v.PREVIOUS), v.find(found, v.LIVE)
        if previous is None or live is None:
            raise EngineError(
                "no previous version is kept to roll back to",
                code="RTP516",
                hint="`rtp deploy ls` lists the versions",
            )
        done = _switch(backend, live, previous, progress, keep=2, retire=[])
        return Lifecycle(
            "rollback",
            target,
            previous.number,
            previous.changed,
            done,
            message=f"version {previous.number} is live again; version {live.number} is kept",
        )

    return _locked("rollback", backend, command, break_lock, progress, body)


def discard(
    backend: Backend,
    *,
    command: str = "rtp deploy discard",
    break_lock: bool = False,
    progress: Progress = None,
) -> Lifecycle:
    """Drop the staged version (or one whose stage was cut short). Raises EngineError
    RTP516 when nothing is staged, RTP515, RTP503."""

    def body(found: list[v.Version], target: str) -> Lifecycle:
        staged = v.find(found, v.STAGING) or v.find(found, v.BUILDING)
        if staged is None:
            raise EngineError("no version is staged", code="RTP516")
        plan = Plan(f"{target} (discard version {staged.number})")
        plan.changes.append(retire_change(staged, v.DISCARDED))
        done = _apply(plan, backend, progress)
        return Lifecycle(
            "discard",
            target,
            staged.number,
            staged.changed,
            done,
            message=f"discarded version {staged.number}",
        )

    return _locked("discard", backend, command, break_lock, progress, body)


def versions(backend: Backend) -> list[dict]:
    """``rtp deploy ls``: every version (number, status, base, created_at, changed)."""
    return [
        {
            "version": x.number,
            "status": x.status,
            "base": x.base,
            "created_at": x.created_at,
            "changed": x.changed,
        }
        for x in v.read_versions(backend)
    ]


def staged_tables(backend: Backend) -> tuple[int, dict[str, str]] | None:
    """The staged version's number and its tables' names (project name -> table), or
    None when nothing is staged: what a server reads a staged answer from."""
    staged = v.find(v.read_versions(backend), v.STAGING)
    return None if staged is None else (staged.number, staged.physical())


# project files a version keeps, to serve it again from another process or after a restart
_PROJECT_FILES = ("*.yaml", "*.yml", "*.datasource", "*.pipe", "*.incl", "*.connection")
_SKIP_DIRS = {STATE_DIR, ".git", "node_modules", "fixtures", "__pycache__", ".venv", "venv"}


def snapshot(root: Path) -> dict[str, str]:
    """The project's definition files under ``root`` (relative path -> text)."""
    files: dict[str, str] = {}
    for folder, dirs, names in os.walk(root):
        dirs[:] = [d for d in dirs if d not in _SKIP_DIRS and not d.startswith(".")]
        for name in names:
            if any(fnmatch.fnmatch(name, p) for p in _PROJECT_FILES):
                path = Path(folder) / name
                if path.stat().st_size < 1_000_000:
                    files[str(path.relative_to(root))] = path.read_text("utf-8", "replace")
    return files


def version_build(root: Path, version: v.Version) -> Build | None:
    """``version``'s project built from the files it keeps (None when it keeps none:
    the version deployed before the first stage), as if it were at ``root``."""
    files = version.manifest.get("files")
    if not files:
        return None
    folder = versions_dir(root) / str(version.number)
    shutil.rmtree(folder, ignore_errors=True)
    for rel, text in files.items():
        path = folder / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, "utf-8")
    built = build(folder, check=False)
    return replace(built, root=root, project=replace(built.project, root=root))


def guard_plain_deploy(backend: Backend, plan: Plan) -> None:
    """``rtp deploy`` straight to live with changes: refused (RTP517) while a version
    is staged; kept previous versions are dropped first (their copies would no longer
    match what is live), by changes put in front of ``plan``."""
    if not plan.pending or not v.has_versions(backend):
        return
    found = v.read_versions(backend)
    _no_staging(found, "deploy straight to live")
    retired = [retire_change(x, v.RETIRED) for x in found if x.status == v.PREVIOUS]
    if retired and getattr(backend, "cluster", None):
        versions_for_cluster(retired, backend)  # type: ignore[arg-type]
    plan.changes[:0] = retired


def _no_staging(found: list[v.Version], what: str) -> None:
    staged = v.find(found, v.STAGING) or v.find(found, v.BUILDING)
    if staged is not None:
        raise EngineError(
            f"version {staged.number} is staged; can't {what} now",
            code="RTP517",
            hint="promote it (`rtp deploy promote`) or drop it (`rtp deploy discard`) first",
        )


def _locked(
    action: str,
    backend: Backend,
    command: str,
    break_lock: bool,
    progress: Progress,
    body: Callable[[list[v.Version], str], Lifecycle],
) -> Lifecycle:
    """Run one lifecycle command's ``body`` (the target's versions, ``backend:database``
    -> what it did) while holding the target's deploy lock for ``command``.

    An interrupted deploy is finished first from its journal, and then the command stops
    there: running it again could undo what the interrupted one did (e.g. a second
    rollback). Raises EngineError RTP515 when another deploy holds the target."""
    target = f"{backend.name}:{backend.database}"
    with held(backend, command, break_lock=break_lock):
        unfinished = resume(backend, progress=progress)
        if unfinished:
            return Lifecycle(
                action,
                target,
                resumed=unfinished.describe(),
                message="finished the interrupted deploy; nothing else was done: run "
                f"`rtp deploy {'--stage' if action == 'stage' else action}` again if it is "
                "still needed",
            )
        return body(v.read_versions(backend), target)


def _switch(
    backend: Backend,
    live: v.Version,
    to: v.Version,
    progress: Progress,
    *,
    keep: int,
    retire: list[v.Version],
) -> list[str]:
    """Make version ``to`` live and ``live`` previous (rtp.deploy.stage.switch_plan);
    ``live``'s manifest is written first, for its tables and views that ``to`` changes,
    so that it can be made live again."""
    live.manifest = live_manifest(backend, to.changed, to)
    v.write(backend, live.number, v.LIVE, live.base, live.manifest)
    return _apply(switch_plan(backend, live, to, keep=keep, retire=retire), backend, progress)


def _apply(
    plan: Plan, backend: Backend, progress: Progress, project: Project | None = None
) -> list[str]:
    if getattr(backend, "cluster", None):  # every version object on every node
        versions_for_cluster(plan.pending, backend, project)  # type: ignore[arg-type]
    return [c.describe() for c in apply(plan, backend, allow_destructive=True, progress=progress)]


@dataclass
class Compared:
    """One request of ``rtp deploy diff``: the two answers and how long each took."""

    request: str
    same: bool
    live_ms: float
    staging_ms: float
    live: str  # the answer's rows (or error), shortened
    staging: str
    failed: bool = False  # either side answered an error


def compare(requests: list[str], answer: Callable[[str, bool], tuple[object, float]]):
    """Run each request against live and staging (``answer(request, staged)`` -> (rows or
    an error text, seconds)) and compare the rows."""
    out = []
    for request in requests:
        live, live_s = answer(request, False)
        staged, staged_s = answer(request, True)
        out.append(
            Compared(
                request,
                live == staged,
                live_s * 1000,
                staged_s * 1000,
                _short(live),
                _short(staged),
                isinstance(live, str) or isinstance(staged, str),
            )
        )
    return out


def _short(value: object) -> str:
    import json

    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text if len(text) <= 200 else text[:197] + "..."
