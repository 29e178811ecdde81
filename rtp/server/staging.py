"""Answers from the staged version: ``?__stage=staging`` or ``X-RTP-Stage: staging``.

Endpoints and ``/v0/sql`` answer from the staged version (:mod:`rtp.deploy.versions`)
for ADMIN tokens (endpoints also for ``STAGING:READ:<pipe>``): the staged project's
pipes, composed as usual, read the staged copies of the tables that changed
(:func:`rtp.sql.rename.rename_tables`) and the live tables for everything shared.
``live`` (or nothing) is the live version.
"""

from __future__ import annotations

import urllib.parse
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from fastapi import Request

from rtp.errors import EngineError, RequestError

if TYPE_CHECKING:
    from rtp.ops.build import Build
    from rtp.server.tokens import Grant
    from rtp.sql.compose import CompiledProject

PARAM, HEADER = "__stage", "x-rtp-stage"


@dataclass
class Staged:
    """The staged version a server answers ``__stage=staging`` from."""

    number: int
    build: Build
    tables: dict[str, str] = field(default_factory=dict)  # datasource -> staged table


def wanted(request: Request) -> bool:
    """Whether the request asks for the staged version. Raises RequestError RTP400 for
    a value other than ``staging`` or ``live``."""
    value = request.query_params.get(PARAM) or request.headers.get(HEADER)
    if not value or value == "live":
        return False
    if value != "staging":
        raise RequestError(f"{PARAM}={value!r}: the stage is 'staging' or 'live'", code="RTP400")
    return True


def choose(
    state, request: Request, pipe: str | None = None
) -> tuple[CompiledProject, dict[str, str], Grant | None]:
    """(the compiled project to answer from, the tables it reads under other names, the
    caller's grant when it asked for the staged version). The staged version is for
    ADMIN tokens and, for endpoint ``pipe``, tokens with ``STAGING:READ:<pipe>``.
    Raises RequestError RTP403 for another token, EngineError RTP516 when nothing is
    staged."""
    if not wanted(request):
        return state.compiled, {}, None
    grant = state.authorize(request, "STAGING:READ" if pipe else "ADMIN", pipe or "staging")
    staged: Staged | None = getattr(state, "staging", None)
    if staged is None:
        raise EngineError(
            "no version is staged", code="RTP516", hint="run `rtp deploy --stage` first"
        )
    return staged.build.compiled, staged.tables, grant


class RecentRequests:
    """Pure ASGI middleware keeping the last ``size`` endpoint requests (GET
    ``/v0/pipes/NAME.FMT?...``, the token taken out, staged ones left out) in memory, for
    ``rtp deploy diff --recent N``. Nothing is written anywhere."""

    def __init__(self, app, state, size: int = 1000) -> None:
        self.app = app
        state.recent_requests = self.kept = deque(maxlen=size)

    async def __call__(self, scope, receive, send):
        if (
            scope["type"] == "http"
            and scope["method"] == "GET"
            and scope["path"].startswith("/v0/pipes/")
            and "." in scope["path"][10:]
        ):
            self.kept.append((scope["path"], scope.get("query_string", b"")))
        return await self.app(scope, receive, send)


def recent(state, n: int | None = None) -> list[str]:
    """The endpoint requests kept by :class:`RecentRequests`, oldest first, as
    ``path?query`` without the token; requests for the staged version left out."""
    out = []
    for path, raw in list(getattr(state, "recent_requests", ())):
        query = raw.decode("latin-1")
        pairs = urllib.parse.parse_qsl(query, keep_blank_values=True)
        if any(k == PARAM for k, _ in pairs):
            continue
        kept = urllib.parse.urlencode([(k, x) for k, x in pairs if k != "token"])
        out.append(path + ("?" + kept if kept else ""))
    return out[-n:] if n else out
