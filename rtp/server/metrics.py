"""Prometheus metrics, written in the plain text exposition format.

An ASGI middleware (not Starlette's BaseHTTPMiddleware, which costs ~100 µs a request)
counts requests by route and status and observes their latency.
"""

from __future__ import annotations

import bisect
import time
from collections import defaultdict

BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_STATIC = {"/healthz", "/metrics", "/docs", "/v0/events", "/v0/pipes/openapi.json"}


class Metrics:
    def __init__(self, pipes: set[str]) -> None:
        self.pipes = pipes
        self.requests: dict[tuple[str, str, int], int] = defaultdict(int)
        self.latency: dict[str, list[int]] = {}
        self.latency_sum: dict[str, float] = defaultdict(float)
        self.latency_count: dict[str, int] = defaultdict(int)
        self.rows: dict[str, int] = defaultdict(int)
        self.quarantined: dict[str, int] = defaultdict(int)

    def route(self, path: str) -> str:
        """A bounded label: known routes as is, pipes by name, anything else 'other'."""
        if path in _STATIC:
            return path
        if path.startswith("/v0/pipes/"):
            name = path[10:].rsplit(".", 1)[0]
            return f"/v0/pipes/{name}" if name in self.pipes else "/v0/pipes/<unknown>"
        return "other"

    def observe(self, method: str, path: str, status: int, seconds: float) -> None:
        route = self.route(path)
        self.requests[(route, method, status)] += 1
        counts = self.latency.get(route)
        if counts is None:
            counts = self.latency[route] = [0] * (len(BUCKETS) + 1)
        counts[bisect.bisect_left(BUCKETS, seconds)] += 1
        self.latency_sum[route] += seconds
        self.latency_count[route] += 1

    def ingested(self, datasource: str, rows: int, quarantined: int) -> None:
        self.rows[datasource] += rows
        self.quarantined[datasource] += quarantined

    def render(self) -> str:
        out = ["# HELP rtp_requests_total HTTP requests by route, method and status.",
               "# TYPE rtp_requests_total counter"]
        for (route, method, status), n in sorted(self.requests.items()):
            out.append(f'rtp_requests_total{{route="{route}",method="{method}",'
                       f'status="{status}"}} {n}')
        out += ["# HELP rtp_request_seconds Time to answer a request.",
                "# TYPE rtp_request_seconds histogram"]
        for route, counts in sorted(self.latency.items()):
            total = 0
            for bound, n in zip((*BUCKETS, "+Inf"), counts, strict=False):
                total += n
                out.append(f'rtp_request_seconds_bucket{{route="{route}",le="{bound}"}} {total}')
            out.append(f'rtp_request_seconds_sum{{route="{route}"}} '
                       f"{self.latency_sum[route]:.6f}")
            out.append(f'rtp_request_seconds_count{{route="{route}"}} '
                       f"{self.latency_count[route]}")
        for name, help_text, data in (
            ("rtp_rows_ingested_total", "Event rows inserted, by datasource.", self.rows),
            ("rtp_rows_quarantined_total", "Event rows sent to quarantine, by datasource.",
             self.quarantined),
        ):
            out += [f"# HELP {name} {help_text}", f"# TYPE {name} counter"]
            out += [f'{name}{{datasource="{ds}"}} {n}' for ds, n in sorted(data.items())]
        return "\n".join(out) + "\n"


class MetricsMiddleware:
    """Pure ASGI middleware observing every HTTP request."""

    def __init__(self, app, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started = time.perf_counter()
        status = 500

        async def send_wrapper(message):
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            self.metrics.observe(scope["method"], scope["path"], status,
                                 time.perf_counter() - started)
