"""``POST /v0/deploy`` (ADMIN): deploy the project's files, or run a version command.

Body: ``{"plan_only": false, "allow_destructive": false, "sql": false}`` (``sql``: the
rendered plan lists each statement, as ``rtp deploy --plan --sql``). The server reads the files
under its project folder (the caller sends none), so this is ``rtp deploy`` run by the
process that holds the engine; ``rtp deploy`` sends it while ``rtp serve``/``rtp dev``
holds the embedded database. After an apply, the new project is swapped into the
running app the way ``rtp dev`` does on a file change.

Answer: ``{"target", "plan" (the rendered plan), "drift", "changes" (each described),
"applied" (what was done), "up_to_date", "resumed"}`` (``resumed``: the interrupted
deploy that was finished first, described, or null; with ``plan_only`` the unfinished
one is described and nothing runs). A project with errors answers 400 with
``problems``; a destructive plan without ``allow_destructive`` answers 409 (RTP504).

With ``"action"``: ``stage`` | ``promote`` | ``rollback`` | ``discard`` | ``ls`` (and
``"break_lock": bool``) runs that version command (:mod:`rtp.ops.stage`) and answers
its outcome (``ls``: ``{"versions": [...]}``; ``recent``: ``{"requests": [...]}``, the
endpoint requests this server answered last, for ``rtp deploy diff --recent``). The
server serves what it makes live at once, and answers ``?__stage=staging`` from what it
staged (:mod:`rtp.server.staging`).
"""

from __future__ import annotations

import json
import logging
import threading
import time
import weakref

from fastapi import APIRouter, Request

from rtp.deploy import versions as v
from rtp.errors import RequestError, RtpError
from rtp.ops import stage as lifecycle
from rtp.ops.build import ProjectInvalid, build
from rtp.ops.deploy import reload
from rtp.server import staging
from rtp.server.http import error_response, read_body
from rtp.server.staging import Staged

router = APIRouter()
log = logging.getLogger("rtp.server")
ACTIONS = ("deploy", "stage", "promote", "rollback", "discard", "ls", "recent")


def _flag(data: dict, name: str) -> bool:
    value = data.get(name, False)
    if not isinstance(value, bool):
        raise RequestError(f"'{name}' must be true or false", code="RTP400")
    return value


def run_deploy(
    state, *, plan_only: bool, allow_destructive: bool, sql: bool = False, break_lock=False
) -> dict:
    """Build the project's files again, plan (and apply) against the server's engine,
    and serve the result (:func:`rtp.ops.deploy.reload`, the gates of ``rtp deploy``).
    Blocking. Raises ProjectInvalid RTP109 (its ``problems`` go in the answer) and
    whatever planning or applying raises (RTP503, RTP504 ...)."""
    with state.deploying:
        try:
            _, outcome = reload(
                state.project.root,
                state.backend,
                state.reload,
                plan_only=plan_only,
                allow_destructive=allow_destructive,
                sql=sql,
                break_lock=break_lock,
            )
            return outcome.as_dict()
        finally:  # a deploy that stopped half-way may have dropped views: refuse their rows
            state.check_views()


def run_lifecycle(state, action: str, *, break_lock: bool = False) -> dict:
    """A version command on the server's engine, then serve its result: ``stage``
    builds the project's files and keeps the build for ``__stage=staging``; ``promote``
    and ``rollback`` swap the build they make live in (the one made previous is kept
    for a rollback). Blocking. Raises as :mod:`rtp.ops.stage`."""
    if action == "ls":
        return {"versions": lifecycle.versions(state.backend)}
    if action == "recent":  # rtp deploy diff --recent N
        return {"requests": staging.recent(state)}
    kept: dict = state.__dict__.setdefault("kept_builds", {})
    root = state.project.root
    command = f"rtp deploy {action} (through the server)"
    with state.deploying:
        try:
            found = v.read_versions(state.backend)
            live = v.find(found, v.LIVE)
            if action == "stage":
                built = build(root)
                outcome = lifecycle.stage(
                    built, state.backend, command=command, break_lock=break_lock
                )
                if outcome.version is not None:
                    attach_staging(state, built)
            elif action == "promote":
                outcome = lifecycle.promote(
                    state.backend,
                    keep=state.project.settings.deploy_keep,
                    command=command,
                    break_lock=break_lock,
                )
                if outcome.resumed:  # an interrupted command finished: serve what is live
                    attach_versions(state)
                    return outcome.as_dict()
                staged = getattr(state, "staging", None)
                _swap(state, kept, live, staged.build if staged else None, outcome.version)
                state.staging = None
            elif action == "rollback":
                outcome = lifecycle.rollback(state.backend, command=command, break_lock=break_lock)
                if outcome.resumed:
                    attach_versions(state)
                    return outcome.as_dict()
                _swap(state, kept, live, kept.get(outcome.version), outcome.version)
            else:
                outcome = lifecycle.discard(state.backend, command=command, break_lock=break_lock)
                state.staging = None
            return outcome.as_dict()
        finally:
            state.check_views()


def _swap(state, kept: dict, was: v.Version | None, built, number: int) -> None:
    """Serve version ``number`` (``built``, else built from the files it keeps) and keep
    the build served until now under the number of the version that was live."""
    if was is not None:
        kept[was.number] = _current_build(state)
    if built is None:
        version = next(x for x in v.read_versions(state.backend) if x.number == number)
        built = lifecycle.version_build(state.project.root, version)
    if built is not None:
        state.reload(built)
    else:
        log.warning("version %s keeps no files; serving the project as loaded", number)


def _current_build(state):
    from rtp.ops.build import Build

    return Build(state.project.root, state.project, state.compiled, tuple(state.problems), False)


def attach_versions(state) -> None:
    """At start: serve the live version as it was staged (the files it keeps; the
    project's files may hold a newer, staged one) and answer ``__stage=staging`` from
    the staged one."""
    try:
        live = v.find(v.read_versions(state.backend), v.LIVE)
        built = None if live is None else lifecycle.version_build(state.project.root, live)
    except RtpError as exc:
        log.warning("could not read the deploy versions: %s", exc)
        return
    if built is not None:
        state.reload(built)
    attach_staging(state)


def watch_versions(state, interval: float = 2.0) -> None:
    """On a ClickHouse server target, other processes (``rtp deploy`` run elsewhere,
    other servers) stage, promote and roll back too: every ``interval`` seconds, one
    cheap read of ``_rtp_versions``; on a change, serve the live version and the staged
    one as :func:`attach_versions` does. (The live tables need no following: live always
    has the plain names.) The embedded engine has one holder, which runs every command
    itself. Stops with the server, or at the first error (the backend closed)."""
    if state.backend.name == "embedded":
        return

    def newest(backend) -> int:
        if not v.has_versions(backend):
            return 0
        return int(backend.query(f"SELECT max(at) FROM `{v.VERSIONS_TABLE}`")[1][0][0])

    def loop(ref: weakref.ref, last: int) -> None:
        while True:
            time.sleep(interval)
            current = ref()  # an app dropped without a shutdown (tests) ends the watch
            if current is None or current.stopping:
                return
            try:
                now = newest(current.backend)
                if now != last:
                    last = now
                    with current.deploying:
                        attach_versions(current)
            except Exception as exc:  # noqa: BLE001 — the backend is gone: stop watching
                log.debug("stopped watching the deploy versions: %s", exc)
                return
            del current

    try:
        first = newest(state.backend)
    except RtpError as exc:
        log.warning("could not read the deploy versions: %s", exc)
        return
    threading.Thread(
        target=loop, args=(weakref.ref(state), first), daemon=True, name="rtp-versions"
    ).start()


def attach_staging(state, built=None) -> None:
    """Answer ``__stage=staging`` from the staged version (``built``, else built from
    the files it keeps); at start and after ``stage``. Leaves it off when the engine
    can't say (a serving user without rights on rtp's tables)."""
    try:
        found = v.read_versions(state.backend)
        staged = v.find(found, v.STAGING)
        if staged is None:
            state.staging = None
            return
        if built is None:
            built = lifecycle.version_build(state.project.root, staged)
        state.staging = None if built is None else Staged(staged.number, built, staged.physical())
    except RtpError as exc:
        log.warning("could not read the deploy versions: %s", exc)
        state.staging = None


@router.post("/v0/deploy")
async def post_deploy(request: Request):
    state = request.app.state.rtp
    state.authorize(request, "ADMIN", "deploy")
    body = await read_body(request, state.settings.max_body_bytes)
    try:
        data = json.loads(body or b"{}")
    except ValueError as exc:
        raise RequestError(f"the body is not JSON: {exc}", code="RTP407") from None
    if not isinstance(data, dict):
        raise RequestError(
            'the body must be {"plan_only": bool, "allow_destructive": bool}', code="RTP407"
        )
    action = data.get("action", "deploy")
    if action not in ACTIONS:
        raise RequestError(
            f"unknown action {action!r}", code="RTP400", hint=f"one of {', '.join(ACTIONS)}"
        )
    try:
        if action != "deploy":
            return await state.run(
                run_lifecycle, state, action, break_lock=_flag(data, "break_lock")
            )
        return await state.run(
            run_deploy,
            state,
            plan_only=_flag(data, "plan_only"),
            allow_destructive=_flag(data, "allow_destructive"),
            sql=_flag(data, "sql"),
            break_lock=_flag(data, "break_lock"),
        )
    except ProjectInvalid as exc:
        return error_response(exc, state.settings, problems=[p.to_dict() for p in exc.problems])
