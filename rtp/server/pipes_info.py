"""``GET /v0/pipes`` and ``GET /v0/pipes/<name>``: what the project's pipes are, in
Tinybird's shape (``{"pipes": [...]}``; a pipe has ``name``, ``type``, ``endpoint``,
``nodes`` with ``name``, ``sql``, ``params``, ``dependencies``).

A token sees the pipes its ``PIPES:READ`` scopes name (ADMIN: all). This router is
included after ``/v0/pipes/{name}.{fmt}`` and ``/v0/pipes/openapi.json``: a name with
a dot in it belongs to those routes.
"""

from __future__ import annotations

from fastapi import APIRouter, Request

from rtp.errors import RequestError
from rtp.sql.compose import CompiledPipe, CompiledProject
from rtp.sql.params import Param

router = APIRouter()

# rtp pipe type -> Tinybird's (an internal pipe is a "default" one there)
TYPES = {
    "endpoint": "endpoint",
    "materialized": "materialized",
    "copy": "copy",
    "internal": "default",
}


def param_info(param: Param) -> dict:
    return {
        "name": param.name,
        "type": param.type,
        "default": _jsonable(param.default),
        "required": bool(param.required and param.default is None),
        "description": param.description or None,
        "example": _jsonable(param.example),
        "enum": list(param.enum) or None,
    }


def _jsonable(value):
    return value if value is None or isinstance(value, str | int | float | bool) else str(value)


def pipe_info(compiled: CompiledProject, cpipe: CompiledPipe, base_url: str) -> dict:
    """One pipe as Tinybird describes it. ``id``s are names: rtp addresses pipes and
    nodes by name, and every route that takes an id takes the name."""
    pipe = cpipe.pipe
    kind = TYPES.get(pipe.type, pipe.type)
    last = len(cpipe.nodes) - 1
    nodes = []
    for i, cnode in enumerate(cpipe.nodes):
        node_type = kind if i == last and kind != "default" else "standard"
        nodes.append(
            {
                "id": cnode.node.name,
                "name": cnode.node.name,
                "sql": cnode.node.sql,
                "description": cnode.node.description or None,
                "dependencies": sorted({r.name for r in cnode.refs}),
                "materialized": pipe.target if node_type == "materialized" else None,
                "node_type": node_type,
                "params": [param_info(p) for p in cnode.template.params.values() if p.declared],
            }
        )
    info = {
        "id": pipe.name,
        "name": pipe.name,
        "description": pipe.description or None,
        "type": kind,
        "endpoint": cpipe.nodes[last].node.name if kind == "endpoint" and cpipe.nodes else None,
        "created_at": None,
        "updated_at": None,
        "parent": None,
        "nodes": nodes,
    }
    if kind == "endpoint" and pipe.name not in compiled.broken:
        info["url"] = f"{base_url}/v0/pipes/{pipe.name}.json"
        info["params"] = [param_info(p) for p in compiled.params(pipe.name).values() if p.declared]
    if kind in ("materialized", "copy"):
        info["target_datasource"] = pipe.target
    if kind == "copy":
        info["schedule"] = {"cron": pipe.schedule, "mode": pipe.mode}
    return info


def _base_url(request: Request) -> str:
    return str(request.base_url).rstrip("/")


@router.get("/v0/pipes")
async def list_pipes(request: Request):
    state = request.app.state.rtp
    grant = state.caller(request)
    compiled = state.compiled
    base = _base_url(request)
    return {
        "pipes": [
            pipe_info(compiled, compiled.pipes[name], base)
            for name in sorted(compiled.pipes)
            if grant.allows("PIPES:READ", name)
        ]
    }


@router.get("/v0/pipes/{name}")
async def get_pipe_info(request: Request, name: str):
    state = request.app.state.rtp
    cpipe = state.compiled.pipes.get(name)
    if cpipe is None:  # 404 before the token check names no scope, as for endpoints
        raise RequestError(
            f"there is no pipe '{name}'", code="RTP404", hint="GET /v0/pipes lists them"
        )
    state.authorize(request, "PIPES:READ", name)
    return pipe_info(state.compiled, cpipe, _base_url(request))
