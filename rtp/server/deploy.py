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
from fastapi.responses import JSONResponse

from rtp.deploy import apply, plan, resume
from rtp.deploy.journal import find_unfinished
from rtp.errors import Problems, RequestError, RtpError
from rtp.project.load import load_project
from rtp.server.events import read_body
from rtp.sql.compose import compile_project

router = APIRouter()


def _flag(data: dict, name: str) -> bool:
    value = data.get(name, False)
    if not isinstance(value, bool):
        raise RequestError(f"'{name}' must be true or false", code="RTP400")
    return value


def run_deploy(state, *, plan_only: bool, allow_destructive: bool, sql: bool = False) -> dict:
    """Plan (and apply) the project's files against the server's engine. Blocking.

    Raises RtpError: the project's first error (with ``problems`` on the answer), and
    whatever planning or applying raises (RTP503, RTP504 ...).
    """
    with state.deploying:
        try:
            return _deploy(state, plan_only=plan_only, allow_destructive=allow_destructive,
                           sql=sql)
        finally:  # a deploy that stopped half-way may have dropped views: refuse their rows
            state.check_views()


def _deploy(state, *, plan_only: bool, allow_destructive: bool, sql: bool) -> dict:
    root = state.project.root
    try:
        project, problems = load_project(root)
        compile_project(project, problems)
    except RtpError as exc:
        problems = Problems([exc])
    if problems.errors:
        return {"problems": [p.to_dict() for p in problems.sorted() if p.severity == "error"]}
    if plan_only:
        unfinished = find_unfinished(state.backend)
        if unfinished is not None:
            return {"target": unfinished.target, "plan": unfinished.describe() + "\n`rtp "
                    "deploy` finishes it first, then plans the project again.",
                    "drift": [], "changes": [], "applied": [], "up_to_date": False,
                    "unfinished": unfinished.describe()}
    resumed = resume(state.backend)
    result = plan(project, state.backend)
    answer = {"target": result.target, "plan": result.render(sql=sql),
              "resumed": resumed.describe() if resumed else None,
              "drift": list(result.drift),
              "changes": [c.describe() for c in result.pending], "applied": [],
              "up_to_date": not result.pending}
    if plan_only or not result.pending:
        if not plan_only:
            state.reload(project)  # unchanged tables, maybe changed endpoints
        return answer
    done = apply(result, state.backend, allow_destructive=allow_destructive)
    answer["applied"] = [c.describe() for c in done]
    state.reload(project)
    return answer


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
        raise RequestError('the body must be {"plan_only": bool, "allow_destructive": '
                           "bool}", code="RTP407")
    answer = await state.run(run_deploy, state, plan_only=_flag(data, "plan_only"),
                             allow_destructive=_flag(data, "allow_destructive"),
                             sql=_flag(data, "sql"))
    if "problems" in answer:
        first = answer["problems"][0]
        settings = state.settings
        return JSONResponse({"error": f"the project has {len(answer['problems'])} "
                             "error(s); run `rtp check`", "code": first["code"],
                             "documentation": f"{settings.docs_url}#{first['code']}",
                             "problems": answer["problems"]}, status_code=400)
    return answer
