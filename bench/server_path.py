"""What the server itself adds per endpoint call, measured without the engine's noise.

The whole request path of the real app (routing, token check, parameter checks, template
rendering and composition of the pipe's nodes, the worker-thread hop, the response) with
a backend that answers instantly, calling the ASGI app in-process. This is the part of
the HTTP-vs-engine difference that is rtp's; the rest is the loopback HTTP hop and the
shared machine's noise.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from pathlib import Path
from urllib.parse import urlencode

from bench.common import REPO, pct


class NoEngine:
    """A backend that answers instantly, standing in for the embedded engine (tokens in
    a file, table CTEs)."""

    name = "embedded"

    def version(self) -> str:
        import chdb

        return chdb.__version__

    def query_bytes(self, sql: str, fmt: str, limits=None, settings=None) -> bytes:
        return b"{}"

    def query(self, sql: str, limits=None, settings=None) -> tuple[list, list]:
        return [], []  # no rows: no versions, nothing of rtp's in it


async def _calls(app, token: bytes, query: bytes, calls: int) -> list[float]:
    scope = {
        "type": "http",
        "method": "GET",
        "path": "/v0/pipes/recommendations.json",
        "raw_path": b"/v0/pipes/recommendations.json",
        "query_string": query,
        "headers": [(b"authorization", b"Bearer " + token)],
        "http_version": "1.1",
        "scheme": "http",
        "server": ("x", 80),
        "client": ("c", 1),
        "root_path": "",
    }

    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}

    out = []
    for _ in range(calls + 20):
        sent: list = []

        async def send(message, sent=sent):
            sent.append(message)

        t = time.perf_counter()
        await app(dict(scope), receive, send)
        out.append(time.perf_counter() - t)
        if sent[0]["status"] != 200:
            raise RuntimeError(f"the app answered {sent}")
    return out[20:]


def run(calls: int = 500) -> dict:
    from rtp.project.load import load_project
    from rtp.server import ServerSettings, create_app

    model, _ = load_project(REPO)
    with tempfile.TemporaryDirectory() as tmp:
        app = create_app(model, NoEngine(), ServerSettings(tokens_file=Path(tmp) / "tokens.json"))
        token = app.state.rtp.tokens.ensure_admin().encode()
        query = urlencode(
            {"user_id": "u000123", "session_id": "s0123456789ab", "at": "2026-11-20 12:00:00"}
        ).encode()
        samples = asyncio.run(_calls(app, token, query, calls))
    return {"calls": calls, "p50_ms": pct(samples, 50) * 1000, "p99_ms": pct(samples, 99) * 1000}
