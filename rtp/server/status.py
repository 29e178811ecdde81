"""``/healthz`` (is the engine answering, now?), ``/readyz`` (should this server take
traffic?) and ``/metrics`` (Prometheus)."""

from __future__ import annotations

import time

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, PlainTextResponse

from rtp.engine.limits import Limits

router = APIRouter()
PROBE_DEADLINE = 2.0  # seconds a probe's SELECT 1 may take, queue included


async def _probe(state) -> str | None:
    """None when the engine answers ``SELECT 1`` within PROBE_DEADLINE, else why not."""
    started = time.monotonic()
    limits = Limits(deadline=PROBE_DEADLINE)
    try:
        _, rows = await state.run_query(
            state.backend.query, "SELECT 1", limits=limits, started=started
        )
    except Exception as exc:  # an unhealthy engine is an answer here, not an error
        return f"the engine did not answer SELECT 1: {exc}"
    if rows != [[1]]:
        return f"the engine answered SELECT 1 with {rows!r}"
    return None


@router.get("/healthz")
async def healthz(request: Request):
    state = request.app.state.rtp
    problem = await _probe(state)
    if problem:
        return JSONResponse({"status": "error", "error": problem}, status_code=503)
    body = {
        "status": "ok",
        "engine": state.backend.name,
        "version": state.backend.version(),
        "endpoints": len(state.endpoints),
    }
    if state.watcher is not None:  # a server target: the release this server follows
        body["release"] = state.watcher.status()
    copies = state.scheduler.status()  # scheduled copy pipes: next/last run, last error
    if copies:
        body["copies"] = copies
    return body


@router.get("/readyz")
async def readyz(request: Request):
    """503 with the reason while the server should take no traffic: shutting down, a
    deploy holding the engine longer than ``ready_exclusive_max``, or no answer."""
    state = request.app.state.rtp
    reason = None
    held = state.backend.rw.held_exclusively_for() if hasattr(state.backend, "rw") else 0.0
    if state.stopping:
        reason = "the server is shutting down"
    elif held > state.settings.ready_exclusive_max:
        reason = f"a deploy has held the engine for {held:.0f} s"
    elif not held:  # during a short deploy, a probe would only wait for it
        reason = await _probe(state)
    if reason:
        return JSONResponse({"status": "unavailable", "reason": reason}, status_code=503)
    return {"status": "ready"}


@router.get("/metrics")
async def metrics(request: Request):
    state = request.app.state.rtp
    return PlainTextResponse(
        state.metrics.render(), media_type="text/plain; version=0.0.4; charset=utf-8"
    )
