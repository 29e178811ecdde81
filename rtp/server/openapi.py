"""``GET /v0/pipes/openapi.json`` (OpenAPI 3 for every endpoint) and Swagger UI at
``/docs``. Parameters come from the templates; response columns from the engine's
``DESCRIBE`` of each endpoint composed with sample values. Built on first request, then
cached for the life of the app."""

from __future__ import annotations

import re

from fastapi import APIRouter, Request
from fastapi.openapi.docs import get_swagger_ui_html

from rtp.errors import RtpError
from rtp.query import FORMATS, endpoint_params
from rtp.server import auth
from rtp.sql.params import INT_RANGES, Param

router = APIRouter()


# How ClickHouse's JSON output writes DateTime and DateTime64 values: not RFC 3339
# (a space, no offset), so not OpenAPI's "date-time" format.
_CH_DATETIME = r"^[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?$"


def json_schema(ch_type: str, *, output: bool = False) -> dict:
    """A JSON schema for a ClickHouse (or parameter) type, as ClickHouse's JSON output
    writes it (since 25.x integers of every width are numbers, 128 and 256 bits quoted).
    ``output``: the schema of a result column (date-times as ClickHouse writes them)
    rather than of a parameter (date-times as RFC 3339, which parameters accept)."""
    t = ch_type.strip()
    nullable = False
    while True:
        m = re.fullmatch(r"(Nullable|LowCardinality)\((.*)\)", t)
        if not m:
            break
        nullable = nullable or m.group(1) == "Nullable"
        t = m.group(2).strip()
    if t.startswith("Array("):
        schema = {"type": "array", "items": json_schema(t[6:-1], output=output)}
    elif t in INT_RANGES and not re.search(r"(128|256)$", t):
        schema = {"type": "integer"}
    elif t in INT_RANGES:
        schema = {"type": "string", "format": "integer"}
    elif t.startswith(("Float", "Decimal")):
        schema = {"type": "number"}
    elif t in ("Bool", "Boolean"):
        schema = {"type": "boolean"}
    elif t.startswith("Date32") or t == "Date":
        schema = {"type": "string", "format": "date"}
    elif t.startswith("DateTime") and output:
        schema = {"type": "string", "pattern": _CH_DATETIME}
    elif t.startswith("DateTime"):
        schema = {"type": "string", "format": "date-time"}
    else:
        schema = {"type": "string"}
    if nullable:
        schema["nullable"] = True
    return schema


def _parameter(param: Param) -> dict:
    schema = json_schema(param.element_type)
    if param.enum:
        schema["enum"] = list(param.enum)
    if param.min is not None:
        schema["minimum"] = param.min
    if param.max is not None:
        schema["maximum"] = param.max
    if param.is_array:
        # ?ids=1,2,3 (rtp also takes ?ids=1&ids=2): OpenAPI's form style, not exploded
        schema = {"type": "array", "items": schema}
    if param.default is not None:
        schema["default"] = _listed(param, param.default)
    out = {
        "name": param.name,
        "in": "query",
        "required": bool(param.required and param.default is None),
        "description": param.description or f"{param.type} parameter",
        "schema": schema,
    }
    if param.is_array:
        out.update(style="form", explode=False)
    if param.example is not None:
        out["example"] = _listed(param, param.example)
    return out


def _listed(param: Param, value):
    """An array parameter's default or example as the list it stands for ('a,b' in a
    template is ['a', 'b'])."""
    if not param.is_array:
        return value
    if isinstance(value, str):
        return value.split(",") if value else []
    return list(value) if isinstance(value, list | tuple) else [value]


_ERROR = {
    "description": "Error",
    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
}


def build_spec(state, columns: dict[str, list[tuple[str, str]]]) -> dict:
    """The OpenAPI document; ``columns`` maps each endpoint to its (name, type) output."""
    paths = {}
    for name in state.endpoints:
        pipe = state.project.pipes[name]
        params = [_parameter(p) for p in endpoint_params(state.compiled, name).values()]
        row = {
            "type": "object",
            "properties": {c: json_schema(t, output=True) for c, t in columns.get(name, [])},
        }
        body = {
            "type": "object",
            "properties": {
                "meta": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {"name": {"type": "string"}, "type": {"type": "string"}},
                    },
                },
                "data": {"type": "array", "items": row},
                "rows": {"type": "integer"},
                "rows_before_limit_at_least": {"type": "integer"},
                "statistics": {"$ref": "#/components/schemas/Statistics"},
            },
        }
        for fmt in FORMATS:
            media = FORMATS[fmt][1].split(";")[0]
            content = (
                {"application/json": {"schema": body}}
                if fmt == "json"
                else {
                    media: {
                        "schema": {
                            "type": "string",
                            "format": "binary" if fmt == "parquet" else "text",
                        }
                    }
                }
            )
            paths[f"/v0/pipes/{name}.{fmt}"] = {
                "get": {
                    "operationId": f"{name}_{fmt}",
                    "summary": pipe.description or name,
                    "tags": [name],
                    "parameters": params,
                    "responses": {
                        "200": {"description": "Rows", "content": content},
                        **{s: _ERROR for s in ("400", "403", "404", "408")},
                    },
                }
            }
    return {
        "openapi": "3.0.3",
        "info": {
            "title": f"{state.project.name} endpoints",
            "version": "1.0.0",
            "description": state.project.settings.description or "",
        },
        "paths": paths,
        "components": {
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                "token": {"type": "apiKey", "in": "query", "name": "token"},
            },
            "schemas": {
                "Error": {
                    "type": "object",
                    "properties": {
                        "error": {"type": "string"},
                        "code": {"type": "string"},
                        "documentation": {"type": "string"},
                    },
                },
                "Statistics": {
                    "type": "object",
                    "properties": {
                        "elapsed": {"type": "number"},
                        "rows_read": {"type": "integer"},
                        "bytes_read": {"type": "integer"},
                    },
                },
            },
        },
        "security": [{"bearer": []}, {"token": []}],
    }


def describe(state, name: str) -> list[tuple[str, str]]:
    """An endpoint's output columns, from the engine (empty when it can't say)."""
    try:
        sql = state.compiled.compose(name, state.compiled.sample_values(name)).sql
        columns, rows = state.backend.query(f"DESCRIBE ({sql})")
    except RtpError:
        return []
    return [(r[0], r[1]) for r in rows]


@router.get("/v0/pipes/openapi.json")
async def openapi_json(request: Request):
    """Every endpoint the caller's token may read (any valid token may ask)."""
    state = request.app.state.rtp
    grant = auth.authenticate(state, request)
    if state.openapi_cache is None:
        columns = {n: await state.run(describe, state, n) for n in state.endpoints}
        state.openapi_cache = build_spec(state, columns)
    spec = state.openapi_cache
    visible = {n for n in state.endpoints if grant.allows("PIPES:READ", n)}
    if len(visible) == len(state.endpoints):
        return spec
    return {
        **spec,
        "paths": {p: v for p, v in spec["paths"].items() if p[10:].rsplit(".", 1)[0] in visible},
    }


@router.get("/docs", include_in_schema=False)
async def swagger(request: Request):
    token = request.query_params.get("token", "")
    safe = re.fullmatch(r"[A-Za-z0-9_.\-]{1,2000}", token)  # it lands in a script
    url = "/v0/pipes/openapi.json" + (f"?token={token}" if safe else "")
    return get_swagger_ui_html(openapi_url=url, title=f"{request.app.title} API")
