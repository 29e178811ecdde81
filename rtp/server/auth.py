"""Who is calling, and may they: the one authorization path of every route.

``authenticate`` turns the presented token (``Authorization: Bearer`` or ``?token=``) into
a :class:`~rtp.server.tokens.Grant`: the control token of ``.rtp/owner.json`` (ADMIN while
this server lives), a static token or a JWT of the token store, and applies the token's
rate limit. ``authorize`` also checks one scope. ``ServerState.authorize`` delegates here;
routes that need any valid token (``/v0/pipes/openapi.json``) call ``authenticate``.
"""

from __future__ import annotations

import hmac

from starlette.requests import Request

from rtp.errors import RequestError
from rtp.server.tokens import Grant, hash_token

CONTROL = Grant("rtp-control", frozenset({"ADMIN"}))


def presented_token(request: Request) -> str | None:
    """The token a request carries: ``Authorization: Bearer <token>``, else ``?token=``."""
    header = request.headers.get("authorization")
    if header and header[:7].lower() == "bearer ":
        token = header[7:].strip()
        if token:
            return token
    return request.query_params.get("token") or None


def authenticate(state, request: Request) -> Grant:
    """The caller's grant, whatever its scopes.

    Raises RequestError 403 (RTP403) for a missing or invalid token and 429 (RTP406) when
    the token is over its rate limit.
    """
    token = presented_token(request)
    if state.control and token and hmac.compare_digest(hash_token(token), state.control):
        grant = CONTROL
    else:
        grant = state.tokens.grant(token)
    if state.settings.rate_limit:
        state._rate(grant.name)
    return grant


def authorize(state, request: Request, scope_type: str, resource: str) -> Grant:
    """The caller's grant if it allows ``scope_type`` on ``resource``.

    Raises RequestError 403 (RTP403) for a missing, invalid or insufficient token and
    429 (RTP406) when the token is over its rate limit.
    """
    grant = authenticate(state, request)
    if not grant.allows(scope_type, resource):
        raise RequestError(
            f"the token '{grant.name}' has no {scope_type} scope on '{resource}'",
            code="RTP403",
            hint=f"create one with --scope {scope_type}:{resource}",
        )
    return grant
