"""``/healthz`` (is the engine answering?) and ``/metrics`` (Prometheus)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, PlainTextResponse

router = APIRouter()


@router.get("/healthz")
async def healthz(request: Request):
    state = request.app.state.rtp
    try:
        version = await state.run(state.backend.version)
    except Exception as exc:  # an unhealthy engine is an answer here, not an error
        return JSONResponse({"status": "error", "error": str(exc)}, status_code=503)
    body = {"status": "ok", "engine": state.backend.name, "version": version,
            "endpoints": len(state.endpoints)}
    copies = state.scheduler.status()  # scheduled copy pipes: next/last run, last error
    if copies:
        body["copies"] = copies
    return body


@router.get("/metrics")
async def metrics(request: Request):
    state = request.app.state.rtp
    return PlainTextResponse(state.metrics.render(),
                             media_type="text/plain; version=0.0.4; charset=utf-8")
