"""Prometheus metrics through ``prometheus_client`` (its standard text exposition), one
``CollectorRegistry`` per app: nothing global, so many apps can live in one process.

Every label value comes from a closed set, so callers can't grow the number of series by
sending made-up methods, paths or statuses (``/metrics`` is unauthenticated): method is
one of :data:`METHODS` else ``other``; route is one of :data:`ROUTES`,
``/v0/pipes/<endpoint>`` for the project's endpoints, ``/v0/pipes/<unknown>``, else
``other``; status is a standard HTTP code (:class:`http.HTTPStatus`) else its class
(``5xx``); datasource is one of the project's datasources.

An ASGI middleware (not Starlette's BaseHTTPMiddleware, which costs ~100 µs a request)
counts requests by route, method and status and observes their latency.
"""

from __future__ import annotations

import http
import time

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily

BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
METHODS = frozenset({"GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"})
ROUTES = frozenset(
    {
        "/healthz",
        "/metrics",
        "/docs",
        "/v0/events",
        "/v0/sql",
        "/v0/deploy",
        "/v0/pipes/openapi.json",
    }
)
STATUSES = frozenset(int(s) for s in http.HTTPStatus)


class Metrics:
    """The app's metrics; ``pipes`` (the endpoint names) and ``datasources`` are the label
    values allowed besides the fixed ones, swapped in when the project reloads."""

    def __init__(self, pipes: set[str], datasources: set[str] | None = None) -> None:
        self.pipes = pipes
        self.datasources = datasources or set()
        self.registry = CollectorRegistry(auto_describe=True)
        self._requests = Counter(
            "rtp_requests_total",
            "HTTP requests by route, method and status.",
            ("route", "method", "status"),
            registry=self.registry,
        )
        self._latency = Histogram(
            "rtp_request_seconds",
            "Time to answer a request.",
            ("route",),
            buckets=BUCKETS,
            registry=self.registry,
        )
        self._rows = Counter(
            "rtp_rows_ingested_total",
            "Event rows inserted, by datasource.",
            ("datasource",),
            registry=self.registry,
        )
        self._quarantined = Counter(
            "rtp_rows_quarantined_total",
            "Event rows sent to quarantine, by datasource.",
            ("datasource",),
            registry=self.registry,
        )
        self._cache = Counter(
            "rtp_cache_lookups_total",
            "Cached answers (node empty) and node results looked up, by pipe, node and "
            "result: hit, miss (computed), too_large (ran as written).",
            ("pipe", "node", "result"),
            registry=self.registry,
        )
        self._children: dict[tuple[str, str, str], tuple] = {}  # bounded: closed label sets
        self.consumers: list = []  # the app's Kafka consumers (rtp.connect), for their lag
        self.registry.register(_LagCollector(self))

    def route(self, path: str) -> str:
        """A bounded label: known routes as is, endpoints by name, anything else 'other'."""
        if path in ROUTES:
            return path
        if path.startswith("/v0/pipes/"):
            name = path[10:].rsplit(".", 1)[0]
            return f"/v0/pipes/{name}" if name in self.pipes else "/v0/pipes/<unknown>"
        return "other"

    def observe(self, method: str, path: str, status: int, seconds: float) -> None:
        key = (
            self.route(path),
            method if method in METHODS else "other",
            str(status) if status in STATUSES else f"{status // 100}xx",
        )
        children = self._children.get(key)
        if children is None:
            children = self._children[key] = (
                self._requests.labels(*key),
                self._latency.labels(key[0]),
            )
        children[0].inc()
        children[1].observe(seconds)

    def cache_lookup(self, pipe: str, node: str, result: str) -> None:
        """One lookup in the result cache (:mod:`rtp.query.cache`). The labels are
        bounded by the project: only pipes and nodes with a ``cache`` setting are
        looked up, and the results are three words."""
        self._cache.labels(pipe, node, result).inc()

    def ingested(self, datasource: str, rows: int, quarantined: int) -> None:
        if datasource not in self.datasources:
            datasource = "other"
        self._rows.labels(datasource).inc(rows)
        self._quarantined.labels(datasource).inc(quarantined)

    def render(self) -> str:
        """The Prometheus text exposition format (version 0.0.4)."""
        return generate_latest(self.registry).decode()


class _LagCollector:
    """``rtp_kafka_lag{datasource,topic,partition}``: messages not yet durable rows, as
    the consumers last measured it (labels: the project's datasources and topics and the
    partitions the broker assigned)."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    def describe(self):
        return []

    def collect(self):
        family = GaugeMetricFamily(
            "rtp_kafka_lag",
            "Kafka messages not yet committed (inserted durably), per partition.",
            labels=("datasource", "topic", "partition"),
        )
        for consumer in list(self.metrics.consumers):
            for (topic, partition), lag in dict(consumer.lag).items():
                family.add_metric((consumer.ds.name, topic, str(partition)), lag)
        yield family


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
            self.metrics.observe(
                scope["method"], scope["path"], status, time.perf_counter() - started
            )
