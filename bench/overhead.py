"""The server's own time per endpoint call, with an engine that answers instantly.

``python -m bench.overhead [calls]`` measures, on the example project's
``recommendations`` endpoint (its nine nodes, three parameters):

* ``compose``: checking the parameters and composing the statement (``run_pipe`` with a
  no-op backend), on the calling thread;
* ``request``: the whole request through the real ASGI app in-process (routing, token
  check, parameters, composition, the worker-thread hop, metrics, the response);
* ``cached``: the same request when the endpoint's answer is cached (``cache: {ttl}``).

The machine is shared and noisy, so each figure is the best median of several batches
(noise only ever adds time); p99 is that batch's. The goal (issue 13): request ≤ 0.3 ms.
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlencode

from bench.common import REPO, pct
from bench.server_path import NoEngine, _calls

PARAMS = {"user_id": "u000123", "session_id": "s0123456789ab", "at": "2026-11-20 12:00:00"}


def _best(batches: list[list[float]]) -> dict:
    best = min(batches, key=statistics.median)
    return {"p50_ms": statistics.median(best) * 1000, "p99_ms": pct(best, 99) * 1000}


def compose(calls: int, batches: int = 5) -> dict:
    from rtp.engine.limits import Limits
    from rtp.errors import Problems
    from rtp.project.load import load_project
    from rtp.query import run_pipe
    from rtp.sql.compose import compile_project

    model, _ = load_project(REPO)
    compiled = compile_project(model, Problems())
    backend, limits = NoEngine(), Limits()
    out = []
    for _ in range(batches):
        samples = []
        for _ in range(calls):
            t = time.perf_counter()
            run_pipe(compiled, backend, "recommendations", PARAMS, limits=limits)
            samples.append(time.perf_counter() - t)
        out.append(samples)
    return _best(out)


def request(calls: int, batches: int = 5, *, cached: bool = False) -> dict:
    """``cached``: the endpoint with ``cache: {ttl: 60}``, so every call after the first
    is a hit, answered on the event loop."""
    import dataclasses

    from rtp.project.load import load_project
    from rtp.project.model import Cache
    from rtp.server import ServerSettings, create_app

    model, _ = load_project(REPO)
    if cached:
        pipe = dataclasses.replace(model.pipes["recommendations"], cache=Cache(60.0))
        model = dataclasses.replace(model, pipes={**model.pipes, "recommendations": pipe})
    with tempfile.TemporaryDirectory() as tmp:
        app = create_app(model, NoEngine(), ServerSettings(tokens_file=Path(tmp) / "tokens.json"))
        token = app.state.rtp.tokens.ensure_admin().encode()
        query = urlencode(PARAMS).encode()
        out = [asyncio.run(_calls(app, token, query, calls)) for _ in range(batches)]
    return _best(out)


def run(calls: int = 500) -> dict:
    return {
        "calls": calls,
        "compose": compose(calls),
        "request": request(calls),
        "cached": request(calls, cached=True),
    }


if __name__ == "__main__":
    result = run(int(sys.argv[1]) if len(sys.argv) > 1 else 500)
    for what in ("compose", "request", "cached"):
        r = result[what]
        print(f"{what:8} p50 {r['p50_ms']:.3f} ms  p99 {r['p99_ms']:.3f} ms")
