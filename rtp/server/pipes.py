"""``GET|POST /v0/pipes/<name>.<format>``: run an endpoint pipe."""

from __future__ import annotations

import json
import time
import urllib.parse

from fastapi import APIRouter, Request, Response
from starlette.convertors import StringConvertor, register_url_convertor
from starlette.routing import Route

from rtp.errors import RequestError
from rtp.query import RESERVED, cached_answer, endpoint_params, run_pipe
from rtp.server import staging
from rtp.server.http import read_body

router = APIRouter()


async def _params(request: Request) -> dict:
    """Query-string values (a repeated name gives a list), then a POST's JSON or form
    body on top.

    Raises RequestError RTP407 (400) for a body that is not a JSON object or not UTF-8
    form text, RTP412 (415) for multipart/form-data (parameters are short text: send them as
    application/x-www-form-urlencoded, JSON or in the query string).
    """
    query = request.query_params
    raw: dict = {}
    for key in query:
        if key not in RESERVED:
            values = query.getlist(key)
            raw[key] = values[0] if len(values) == 1 else values
    if request.method == "POST":
        kind = request.headers.get("content-type", "").lower()
        body = await read_body(request, request.app.state.rtp.settings.max_body_bytes)
        if body and "json" in kind:
            try:
                data = json.loads(body)
            except ValueError as exc:
                raise RequestError(f"the body is not JSON: {exc}", code="RTP407") from None
            if not isinstance(data, dict):
                raise RequestError("the JSON body must be an object of parameters", code="RTP407")
            raw.update({k: v for k, v in data.items() if k not in RESERVED})
        elif "multipart/" in kind:
            raise RequestError(
                "multipart bodies are not read here",
                code="RTP412",
                hint="send the parameters as application/"
                "x-www-form-urlencoded, JSON or in the query string",
            )
        elif body and "x-www-form-urlencoded" in kind:
            # parsed here, not with request.form(): that needs python-multipart, and
            # read_body has already consumed the stream
            raw.update(_form(body))
    return raw


def _form(body: bytes) -> dict:
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise RequestError("the form body is not UTF-8", code="RTP407") from None
    try:
        form = urllib.parse.parse_qs(
            text, keep_blank_values=True, errors="strict", max_num_fields=10_000
        )
    except (UnicodeDecodeError, ValueError) as exc:
        raise RequestError(f"the form body is not readable: {exc}", code="RTP407") from None
    return {k: v[0] if len(v) == 1 else v for k, v in form.items() if k not in RESERVED}


async def get_pipe(request: Request) -> Response:
    started = time.monotonic()  # the deadline counts from here
    state = request.app.state.rtp
    name, fmt = request.path_params["name"], request.path_params["fmt"]
    # live unless ?__stage=staging (ADMIN or STAGING:READ:<pipe>: that grant is checked)
    compiled, tables, staged = staging.choose(state, request, name)
    endpoint_params(compiled, name)  # 404 before the token check names no scope
    grant = staged or state.authorize(request, "PIPES:READ", name)
    raw = await _params(request)
    q = request.query_params.get("q")  # the caller's SQL over the result: checked as such
    if not q and not tables:  # a live answer the cache holds needs no worker thread
        hit = cached_answer(compiled, state.cache, name, raw, fmt, grant.fixed("PIPES:READ", name))
        if hit is not None:
            return Response(hit[0], media_type=hit[1])
    limits = state.settings.limits(admin="ADMIN" in grant.scopes, callers_sql=bool(q))
    body, media_type = await state.run_query(
        run_pipe,
        compiled,
        state.backend,
        name,
        raw,
        fmt,
        grant.fixed("PIPES:READ", name),
        limits=limits,
        started=started,
        request=request,
        timeout=limits.deadline,
        q=q,
        admin="ADMIN" in grant.scopes,
        cache=state.cache,
        tables=tables,
    )
    return Response(body, media_type=media_type)


class _PipeName(StringConvertor):
    """An endpoint's name in ``/v0/pipes/<name>.<format>``: anything but ``openapi``
    (``/v0/pipes/openapi.json`` is the OpenAPI document), so this route can be matched
    first, before every other route is tried."""

    regex = r"(?!openapi\.json$)[^/.]+"


register_url_convertor("pipe_name", _PipeName())

# A plain Starlette route: FastAPI's parameter solving would cost ~0.1 ms a call here,
# and every value is checked by the pipe's own typed parameters anyway. The app mounts it
# first: trying the other routes before it costs ~20 µs a call.
router.routes.append(Route("/v0/pipes/{name:pipe_name}.{fmt}", get_pipe, methods=["GET", "POST"]))
