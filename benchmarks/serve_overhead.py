"""What the server adds to the engine's time for one endpoint call.

    PYTHONPATH=. python3 benchmarks/serve_overhead.py [rows] [calls]

Measures, on the same embedded engine and query: the engine alone (``query_bytes`` on
the composed SQL), ``run_pipe`` (params + compose + engine), the ASGI app in-process,
and HTTP through uvicorn on loopback (keep-alive). Prints medians and p99 in ms.
"""

from __future__ import annotations

import asyncio
import socket
import statistics
import sys
import tempfile
import textwrap
import threading
import time
from pathlib import Path

import httpx
import uvicorn

from rtp.deploy.backends.embedded import EmbeddedBackend
from rtp.deploy.ddl import create_table
from rtp.project.load import load_project
from rtp.server import ServerSettings, create_app
from rtp.server.query import run_pipe

FILES = {
    "rtp.yaml": "name: bench\n",
    "datasources/events.yaml": """
        columns:
          - {name: user_id, type: String}
          - {name: product_id, type: String}
          - {name: price, type: Float64}
        sorting_key: [user_id]
    """,
    "pipes/recs.yaml": """
        nodes:
          - name: mine
            sql: |
              SELECT product_id, price FROM events
              WHERE user_id = {{ String(user_id, required=True) }}
          - name: ranked
            sql: |
              SELECT product_id, sum(price) AS spent FROM mine GROUP BY product_id
              ORDER BY spent DESC LIMIT {{ Int32(limit, 10, min=1, max=100) }}
    """,
}


class NoEngine:
    """A backend that answers instantly: what is left is the server's own time."""

    name = "none"

    def query_bytes(self, sql: str, fmt: str) -> bytes:
        return b"{}"


async def server_only(model, calls: int) -> list[float]:
    """The whole request path (middleware, auth, params, compose, thread hop, response)
    with a no-op engine, calling the ASGI app directly."""
    root = Path(tempfile.mkdtemp())
    app = create_app(model, NoEngine(), ServerSettings(tokens_file=root / "tokens.json"))
    token = app.state.rtp.tokens.ensure_admin().encode()
    scope = {"type": "http", "method": "GET", "path": "/v0/pipes/recs.json",
             "raw_path": b"/v0/pipes/recs.json", "query_string": b"user_id=u42&limit=5",
             "headers": [(b"authorization", b"Bearer " + token)], "http_version": "1.1",
             "scheme": "http", "server": ("x", 80), "client": ("c", 1), "root_path": ""}

    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}

    out = []
    for _ in range(calls + 10):
        sent = []

        async def send(message, sent=sent):
            sent.append(message)

        t = time.perf_counter()
        await app(dict(scope), receive, send)
        out.append(time.perf_counter() - t)
        assert sent[0]["status"] == 200, sent
    return out[10:]


def stats(samples: list[float]) -> str:
    samples = sorted(samples)
    p99 = samples[int(len(samples) * 0.99) - 1]
    return f"median {statistics.median(samples) * 1000:.3f} ms  p99 {p99 * 1000:.3f} ms"


def main(rows: int = 1_000_000, calls: int = 300) -> None:
    root = Path(tempfile.mkdtemp())
    for rel, text in FILES.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(textwrap.dedent(text))
    model, _ = load_project(root)
    backend = EmbeddedBackend(":memory:")
    backend.execute(create_table(model.datasources["events"]))
    backend.execute(f"INSERT INTO events SELECT 'u' || toString(number % 10000), "
                    f"'p' || toString(number % 997), number % 100 FROM numbers({rows})")
    app = create_app(model, backend, ServerSettings())
    compiled = app.state.rtp.compiled
    params = {"user_id": "u42", "limit": "5"}
    sql = compiled.compose("recs", {"user_id": "u42", "limit": 5}).sql

    def timed(fn) -> list[float]:
        fn()
        out = []
        for _ in range(calls):
            t = time.perf_counter()
            fn()
            out.append(time.perf_counter() - t)
        return out

    engine = timed(lambda: backend.query_bytes(sql, "JSON"))
    direct = timed(lambda: run_pipe(compiled, backend, "recs", params, "json", timeout=10))

    async def asgi() -> list[float]:
        client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://x")
        out = []
        for _ in range(calls + 1):
            t = time.perf_counter()
            r = await client.get("/v0/pipes/recs.json", params=params)
            out.append(time.perf_counter() - t)
            assert r.status_code == 200
        return out[1:]

    in_process = asyncio.run(asgi())
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, port=port, log_level="warning",
                                           access_log=False))
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.05)
    with httpx.Client(base_url=f"http://127.0.0.1:{port}") as client:
        http = timed(lambda: client.get("/v0/pipes/recs.json", params=params))
    server.should_exit = True
    e = statistics.median(engine)
    print(f"rows {rows}, calls {calls}")
    print(f"server path, no-op engine  {stats(asyncio.run(server_only(model, calls * 5)))}")
    print(f"engine alone      {stats(engine)}")
    print(f"run_pipe          {stats(direct)}   (+{(statistics.median(direct) - e) * 1e3:.3f})")
    print(f"ASGI in-process   {stats(in_process)}   "
          f"(+{(statistics.median(in_process) - e) * 1e3:.3f})")
    print(f"HTTP (uvicorn)    {stats(http)}   (+{(statistics.median(http) - e) * 1e3:.3f})")


if __name__ == "__main__":
    main(*(int(a) for a in sys.argv[1:3]))
