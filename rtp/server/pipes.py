"""``GET|POST /v0/pipes/<name>.<format>``: run an endpoint pipe."""

from __future__ import annotations

import json
import time

from fastapi import APIRouter, Request, Response
from starlette.routing import Route

from rtp.errors import RequestError
from rtp.server.events import read_body
from rtp.server.query import RESERVED, endpoint_params, run_pipe

router = APIRouter()


async def _params(request: Request) -> dict:
    """Query-string values (a repeated name gives a list), then a POST's JSON or form
    body on top."""
    query = request.query_params
    raw: dict = {}
    for key in query:
        if key not in RESERVED:
            values = query.getlist(key)
            raw[key] = values[0] if len(values) == 1 else values
    if request.method == "POST":
        kind = request.headers.get("content-type", "")
        body = await read_body(request, request.app.state.rtp.settings.max_body_bytes)
        if body and "json" in kind:
            try:
                data = json.loads(body)
            except ValueError as exc:
                raise RequestError(f"the body is not JSON: {exc}", code="RTP407") from None
            if not isinstance(data, dict):
                raise RequestError("the JSON body must be an object of parameters",
                                   code="RTP407")
            raw.update({k: v for k, v in data.items() if k not in RESERVED})
        elif body and "form" in kind:
            form = await request.form()
            raw.update({k: v for k, v in form.items() if k not in RESERVED})
    return raw


async def get_pipe(request: Request) -> Response:
    started = time.monotonic()  # the deadline counts from here
    state = request.app.state.rtp
    name, fmt = request.path_params["name"], request.path_params["fmt"]
    endpoint_params(state.compiled, name)  # 404 before the token check names no scope
    grant = state.authorize(request, "PIPES:READ", name)
    raw = await _params(request)
    limits = state.settings.limits(admin="ADMIN" in grant.scopes)
    body, media_type = await state.run_query(
        run_pipe, state.compiled, state.backend, name, raw, fmt,
        grant.fixed("PIPES:READ", name), limits=limits, started=started,
        timeout=limits.deadline)
    return Response(body, media_type=media_type)


# A plain Starlette route: FastAPI's parameter solving would cost ~0.1 ms a call here,
# and every value is checked by the pipe's own typed parameters anyway.
router.routes.append(Route("/v0/pipes/{name}.{fmt}", get_pipe, methods=["GET", "POST"]))
