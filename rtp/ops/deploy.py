"""Deploy: the one path from a built project to a target, for every caller.

``rtp deploy``, ``POST /v0/deploy`` (which ``rtp deploy`` uses while a server holds the
embedded engine), ``rtp dev``'s start and its reloads all call :func:`deploy` or
:func:`reload`, so the same gate applies everywhere: a project ``rtp check`` would refuse
is refused (RTP109, with every problem) before anything runs. An interrupted deploy is
finished from its journal first (see :mod:`rtp.deploy.journal`). On a server target a
deploy ends by recording the release (:func:`rtp.deploy.serving.record_release`), which
every ``rtp serve`` of the target picks up.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from rtp.deploy import apply, plan
from rtp.deploy.apply import resume
from rtp.deploy.journal import find_unfinished
from rtp.deploy.lock import held
from rtp.deploy.plan import Change
from rtp.deploy.serving import record_release
from rtp.engine import Backend
from rtp.ops.build import Build, build
from rtp.ops.stage import guard_plain_deploy


@dataclass
class Outcome:
    """What a deploy did (or, ``plan_only``, would do); ``as_dict`` is the HTTP answer."""

    target: str
    plan: str  # the rendered plan
    drift: list[str] = field(default_factory=list)
    changes: list[str] = field(default_factory=list)  # pending, described
    applied: list[str] = field(default_factory=list)
    up_to_date: bool = False
    resumed: str | None = None  # an interrupted deploy finished first
    unfinished: str | None = None  # plan_only: an interrupted deploy waits to be finished

    def as_dict(self) -> dict:
        return dict(self.__dict__)


def deploy(
    built: Build,
    backend: Backend,
    *,
    allow_destructive: bool = False,
    plan_only: bool = False,
    sql: bool = False,
    progress: Callable[[Change], None] | None = None,
    announce: Callable[[object], None] | None = None,
    break_lock: bool = False,
) -> Outcome:
    """Bring ``backend`` to ``built``'s project (or, ``plan_only``, say what that takes).

    Raises ProjectInvalid RTP109 when the project has errors, EngineError RTP504 for a
    destructive plan without ``allow_destructive``, RTP503 when a step fails (journaled:
    the next deploy finishes it), RTP515 when another deploy holds the target's lock
    and RTP517 while a version is staged (see :mod:`rtp.ops.stage`).
    """
    built.require_valid()
    if plan_only:
        unfinished = find_unfinished(backend)
        if unfinished is not None:
            text = unfinished.describe()
            return Outcome(
                unfinished.target,
                text + "\n`rtp deploy` finishes it first (no "
                "--allow-destructive needed: its plan was approved), then plans "
                "the project again.",
                unfinished=text,
            )
        return _deploy(built, backend, False, True, sql, progress, announce)
    with held(backend, "rtp deploy", break_lock=break_lock):
        return _deploy(built, backend, allow_destructive, False, sql, progress, announce)


def _deploy(
    built: Build,
    backend: Backend,
    allow_destructive: bool,
    plan_only: bool,
    sql: bool,
    progress: Callable[[Change], None] | None,
    announce: Callable[[object], None] | None,
) -> Outcome:
    resumed = None if plan_only else resume(backend, progress=progress, announce=announce)
    result = plan(built.project, backend, compiled=built.compiled)
    outcome = Outcome(
        result.target,
        result.render(sql=sql),
        list(result.drift),
        [c.describe() for c in result.pending],
        [],
        not result.pending,
        resumed.describe() if resumed else None,
    )
    if plan_only:
        return outcome
    if result.pending:
        guard_plain_deploy(backend, result)  # versions: refused while one is staged
        done = apply(result, backend, allow_destructive=allow_destructive, progress=progress)
        outcome.applied = [c.describe() for c in done]
    if backend.name != "embedded":  # every rtp serve of the target follows (rtp.server.watch)
        record_release(backend, built.root)
    return outcome


def reload(
    root: Path, backend: Backend, swap: Callable[[Build], None], **options
) -> tuple[Build, Outcome]:
    """Build the project at ``root`` again, deploy it, then ``swap`` the build into the
    running server (``rtp dev`` on a file change, ``POST /v0/deploy``). With
    ``plan_only`` nothing is deployed or swapped. Raises as :func:`deploy`; on any error
    the server keeps serving the previous build."""
    built = build(root)
    outcome = deploy(built, backend, **options)
    if not options.get("plan_only"):
        swap(built)
    return built, outcome
