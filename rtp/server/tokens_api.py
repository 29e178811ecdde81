"""Tinybird's Tokens API on rtp's token store (ADMIN only):

- ``GET /v0/tokens`` -> ``{"tokens": [{"id", "name", "scopes": [{"type", "resource"}],
  "token": null, ...}]}``. rtp keeps only a hash of each static token, so ``token`` is
  null in listings (Tinybird shows the text); it is returned once, at creation.
- ``GET /v0/tokens/<name>``: one token, same shape.
- ``POST /v0/tokens?name=<name>&scope=<scope>[&scope=...]``: a static token; the body
  may also be a form or JSON with ``name`` and ``scope``/``scopes``.
- ``POST /v0/tokens?expiration_time=<unix>`` with a JSON body ``{"name", "scopes":
  [{"type", "resource", "fixed_params"}]}``: a JWT signed with the store's secret
  (what Tinybird's TypeScript SDK's ``createJWT`` sends); no ADMIN scope in a JWT.
- ``DELETE /v0/tokens/<name>``: revoke (204).
"""

from __future__ import annotations

import json
import urllib.parse

from fastapi import APIRouter, Request, Response

from rtp.errors import RequestError
from rtp.server.http import read_body
from rtp.server.tokens import encode_jwt, parse_scope

router = APIRouter()


def scope_info(scope: str) -> dict:
    if scope == "ADMIN":
        return {"type": "ADMIN"}
    kind, _, resource = scope.rpartition(":")
    return {"type": kind, "resource": resource}


def token_info(entry: dict, text: str | None = None) -> dict:
    return {
        "id": entry["name"],
        "name": entry["name"],
        "description": None,
        "scopes": [scope_info(s) for s in entry["scopes"]],
        "token": text,
        "origin": {"type": "C"},
        "created_at": entry.get("created"),
    }


def _store(state):
    if not hasattr(state.tokens, "create"):
        raise RequestError("this server runs without tokens (--no-auth)", code="RTP400")
    return state.tokens


def _entry(store, name: str) -> dict:
    entry = next((t for t in store.tokens if t["name"] == name), None)
    if entry is None:
        raise RequestError(f"there is no token named '{name}'", code="RTP404")
    return entry


@router.get("/v0/tokens")
async def list_tokens(request: Request):
    state = request.app.state.rtp
    state.authorize(request, "ADMIN", "*")
    return {"tokens": [token_info(t) for t in _store(state).tokens]}


@router.get("/v0/tokens/{name}")
async def get_token(request: Request, name: str):
    state = request.app.state.rtp
    state.authorize(request, "ADMIN", "*")
    return token_info(_entry(_store(state), name))


async def _body_values(request: Request) -> dict:
    body = await read_body(request, request.app.state.rtp.settings.max_body_bytes)
    kind = request.headers.get("content-type", "")
    if not body.strip():
        return {}
    if "json" in kind:
        try:
            data = json.loads(body)
        except ValueError as exc:
            raise RequestError(f"the body is not JSON: {exc}", code="RTP407") from None
        if not isinstance(data, dict):
            raise RequestError("the JSON body must be an object", code="RTP407")
        return data
    pairs = urllib.parse.parse_qsl(body.decode("utf-8", "replace"))
    values: dict = {}
    for key, value in pairs:
        values.setdefault(key, []).append(value)
    return {k: v[0] if len(v) == 1 and k != "scope" else v for k, v in values.items()}


def _jwt(store, body: dict, expiration: str) -> dict:
    try:
        exp = int(expiration)
    except ValueError:
        raise RequestError(
            "expiration_time must be a Unix time in seconds", code="RTP400"
        ) from None
    name = str(body.get("name") or "")
    scopes = body.get("scopes")
    if not name or not isinstance(scopes, list) or not scopes:
        raise RequestError(
            'a JWT needs {"name": ..., "scopes": [{"type", "resource"}]}', code="RTP400"
        )
    for item in scopes:
        if not isinstance(item, dict):
            raise RequestError("each scope is an object with type and resource", code="RTP400")
        scope = parse_scope(f"{item.get('type', '')}:{item.get('resource', '')}")
        if (
            scope == "ADMIN"
            or "fixed_params" in item
            and not isinstance(item["fixed_params"], dict)
        ):
            raise RequestError(f"scope {scope} can't be in a JWT", code="RTP400")
    claims = {"name": name, "scopes": scopes, "exp": exp}
    if isinstance(body.get("limits"), dict):
        claims["limits"] = body["limits"]
    return {"token": encode_jwt(claims, store.jwt_secret)}


async def create_token(request: Request):
    state = request.app.state.rtp
    state.authorize(request, "ADMIN", "*")
    store = _store(state)
    body = await _body_values(request)
    query = request.query_params
    expiration = query.get("expiration_time") or body.get("expiration_time")
    if expiration:
        return _jwt(store, body, str(expiration))
    name = query.get("name") or body.get("name") or ""
    scopes = query.getlist("scope") or body.get("scope") or body.get("scopes") or []
    if isinstance(scopes, str):
        scopes = [scopes]
    scopes = [
        s if isinstance(s, str) else ":".join(x for x in (s.get("type"), s.get("resource")) if x)
        for s in scopes
    ]
    if not name:
        raise RequestError("pass name=<token name>", code="RTP400")
    text = store.create(str(name), scopes)
    return token_info(_entry(store, str(name)), text)


@router.delete("/v0/tokens/{name}")
async def delete_token(request: Request, name: str):
    state = request.app.state.rtp
    state.authorize(request, "ADMIN", "*")
    _store(state).revoke(name)
    return Response(status_code=204)


# both spellings: Tinybird's TypeScript SDK posts to /v0/tokens/
router.add_api_route("/v0/tokens", create_token, methods=["POST"])
router.add_api_route("/v0/tokens/", create_token, methods=["POST"])
