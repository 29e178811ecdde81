"""``POST /v0/deploy`` (ADMIN): re-read the project from disk, plan, apply, and serve it.

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
"""

from __future__ import annotations

import json

from fastapi import APIRouter, Request

from rtp.errors import RequestError
from rtp.ops.build import ProjectInvalid
from rtp.ops.deploy import reload
from rtp.server.http import error_response, read_body

router = APIRouter()


def _flag(data: dict, name: str) -> bool:
    value = data.get(name, False)
    if not isinstance(value, bool):
        raise RequestError(f"'{name}' must be true or false", code="RTP400")
    return value


def run_deploy(state, *, plan_only: bool, allow_destructive: bool, sql: bool = False) -> dict:
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
            )
            return outcome.as_dict()
        finally:  # a deploy that stopped half-way may have dropped views: refuse their rows
            state.check_views()


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
    try:
        return await state.run(
            run_deploy,
            state,
            plan_only=_flag(data, "plan_only"),
            allow_destructive=_flag(data, "allow_destructive"),
            sql=_flag(data, "sql"),
        )
    except ProjectInvalid as exc:
        return error_response(exc, state.settings, problems=[p.to_dict() for p in exc.problems])
