"""The FastAPI application for one project: ``create_app(project, backend, settings)``.

Everything a request needs is built here, once: the compiled project, row mappers, the
token store, the worker threads and the ingest batcher, kept on ``app.state.rtp``. One
exception handler turns every error into Tinybird's shape
``{"error": "...", "documentation": "..."}`` with its status.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException
from starlette.middleware.cors import CORSMiddleware

from rtp.deploy.health import describe_missing, missing_views
from rtp.deploy.serving import ensure as ensure_serving_tables
from rtp.deploy.serving import project_digest
from rtp.engine.limits import Limits
from rtp.errors import EngineError, Problems, RequestError, RtpError, http_status
from rtp.ingest import RowMapper
from rtp.ops.build import Build
from rtp.project.model import Project
from rtp.query.cache import ResultCache
from rtp.server import (
    auth,
    datasources,
    deploy,
    events,
    openapi,
    pipes,
    pipes_info,
    sql,
    staging,
    static,
    status,
    tokens_api,
)
from rtp.server.events import Batcher
from rtp.server.http import error_body, error_response
from rtp.server.metrics import Metrics, MetricsMiddleware
from rtp.server.scheduler import Scheduler
from rtp.server.settings import ServerSettings
from rtp.server.tokens import Grant, NoAuth, hash_token
from rtp.server.tokens_target import token_store
from rtp.server.watch import Watcher
from rtp.sql.compose import compile_project

if TYPE_CHECKING:
    from rtp.engine import Backend

log = logging.getLogger("rtp.server")


class ServerState:
    """What the routes share; one per app."""

    def __init__(
        self, project: Project | Build, backend: Backend, settings: ServerSettings
    ) -> None:
        self.backend = backend
        self.settings = settings
        # a server target keeps its tokens in its own tables, shared by every rtp serve
        # (rtp.server.tokens_target); the embedded target in .rtp/tokens.json
        self.shared = backend.name != "embedded"
        if self.shared:  # rtp's tables for its servers: RTP501 naming `rtp deploy` if absent
            ensure_serving_tables(backend)
        self.tokens = (
            token_store(backend, settings.tokens_file) if settings.tokens_file else NoAuth()
        )
        # kept hashed: the text lives only in .rtp/owner.json, for local rtp commands
        self.control = hash_token(settings.control_token) if settings.control_token else None
        self.executor = ThreadPoolExecutor(settings.threads, thread_name_prefix="rtp-engine")
        self._in_flight = 0  # calls given to the executor and not finished yet
        # one deploy at a time: POST /v0/deploy and rtp dev's watcher plan outside the
        # backend's lock, so two at once could both plan the same CREATE
        self.deploying = threading.Lock()
        self.metrics = Metrics(set())
        self.stopping = False  # set when shutdown starts: /readyz answers 503
        self.digest = ""  # the served project files' digest (rtp.deploy.serving)
        self.watcher: Watcher | None = None  # follows a server target (rtp.server.watch)
        self.reload(project)
        self.batcher = Batcher(
            backend,
            self.run,
            wait=settings.batch_wait,
            max_rows=settings.batch_max_rows,
            max_pending=settings.max_pending_rows,
        )
        self._buckets: dict[str, tuple[float, float]] = {}

    def reload(self, project: Project | Build) -> dict[str, list[str]]:
        """Serve ``project`` from now on (``rtp dev`` after a redeploy, ``POST
        /v0/deploy``, promote, rollback, another server's deploy). A Build (see
        rtp.ops.build) is served as built; a bare Project is compiled here (tests,
        ``create_app`` callers). Everything is made first and then swapped in, so a
        request sees the old or the new project. The process's Kafka consumers then
        follow it; returns what they did (:meth:`follow_consumers`)."""
        if isinstance(project, Build):
            project, problems, compiled = (
                project.project,
                Problems(list(project.problems)),
                project.compiled,
            )
        else:
            problems = Problems()
            compiled = compile_project(project, problems)
        endpoints = sorted(p.name for p in project.endpoints)
        mappers = {name: RowMapper(ds) for name, ds in project.datasources.items()}
        self.project, self.problems, self.compiled = project, problems, compiled
        if self.shared:
            self.digest = project_digest(project.root)
        self.endpoints, self.mappers = endpoints, mappers
        self.metrics.pipes = set(endpoints)
        self.metrics.datasources = set(project.datasources)
        # a new build, a new cache: nothing computed by the old SQL is served again
        self.cache = ResultCache(self.metrics.cache_lookup, build=compiled)
        self.openapi_cache = None
        self.check_views()
        return self.follow_consumers(project)

    def follow_consumers(self, project: Project) -> dict[str, list[str]]:
        """Make this process's Kafka consumers follow ``project``: those of datasources
        whose stream source, columns or connection changed restart, removed ones stop,
        new ones start (:meth:`rtp.connect.runner.Consumers.update`); returns their
        names by what happened. Nothing before the app has started its consumers, nor
        in a process that runs none (``rtp serve --workers N`` but worker 0)."""
        consumers = getattr(self, "consumers", None)
        if consumers is None or not self.settings.consumers:
            return {}
        changes = consumers.update(project)
        for verb, names in changes.items():
            if names:
                log.info("Kafka consumers %s: %s", verb, ", ".join(sorted(names)))
        return changes

    def check_views(self) -> None:
        """Which datasources have materialized views missing on the engine (POST
        /v0/events refuses those with RTP508); at start, on reload, after deploys."""
        try:
            missing = missing_views(self.project, self.backend, self.compiled)
            hint = describe_missing(self.backend, missing) if missing else ""
        except Exception as exc:  # noqa: BLE001 — an engine that can't answer fails inserts anyway
            log.warning("could not check the materialized views: %s", exc)
            missing, hint = {}, ""
        for name, views in missing.items():
            log.warning(
                "datasource %s refuses rows: materialized view(s) %s missing",
                name,
                ", ".join(views),
            )
        self.missing_views, self.missing_hint = missing, hint

    async def run(self, fn, *args, **kwargs):
        """Run a blocking engine call on a worker thread."""
        return await self._on_worker(functools.partial(fn, *args, **kwargs))

    async def _on_worker(self, call):
        """``call()`` on a worker thread, counted in ``_in_flight`` meanwhile."""
        self._in_flight += 1
        try:
            return await asyncio.get_running_loop().run_in_executor(self.executor, call)
        finally:
            self._in_flight -= 1

    async def run_query(
        self,
        fn,
        *args,
        limits: Limits,
        started: float | None = None,
        request: Request | None = None,
        **kwargs,
    ):
        """Run a caller's query ``fn(*args, limits=..., **kwargs)`` on a worker thread.
        The deadline counts from ``started`` (the request's arrival, time.monotonic()):
        the time it waited for a worker is spent, and the engine gets what is left.

        Raises EngineError RTP507 (408), without running ``fn``, when nothing is left;
        RequestError RTP413 (499), without running it either, when ``request``'s caller
        hung up while it waited for a worker: under overload the engine serves those
        still waiting for an answer, not those that gave up.
        """
        started = time.monotonic() if started is None else started
        gone = threading.Event()

        def call():
            if gone.is_set():
                raise RequestError(
                    "the caller hung up before its query started; it did not run",
                    code="RTP413",
                )
            left = limits.deadline - (time.monotonic() - started)
            if left < 0.01:
                raise EngineError(
                    f"the request waited {time.monotonic() - started:.1f} s for the engine, "
                    f"past its deadline of {limits.deadline:g} s",
                    code="RTP507",
                    hint="the server is busy; retry later",
                )
            return fn(*args, limits=limits.within(left), **kwargs)

        # listen for a hang-up only when the call has to queue (no idle worker thread)
        queues = request is not None and self._in_flight >= self.settings.threads
        listening = asyncio.create_task(_hang_up(request, gone)) if queues else None
        try:
            return await self._on_worker(call)
        finally:
            if listening is not None:
                listening.cancel()

    def authorize(self, request: Request, scope_type: str, resource: str) -> Grant:
        """The caller's grant if it allows ``scope_type`` on ``resource``
        (:func:`rtp.server.auth.authorize`: 403 RTP403, 429 RTP406)."""
        return auth.authorize(self, request, scope_type, resource)

    def caller(self, request: Request) -> Grant:
        """The grant of the token ``request`` carries, before any scope check (``/v0/sql``
        decides what to check from it; :func:`rtp.server.auth.authenticate`)."""
        return auth.authenticate(self, request)

    def _rate(self, name: str) -> None:
        # token bucket: rate_limit requests per second, bursts up to 2 s worth
        rate = self.settings.rate_limit
        now = time.monotonic()
        level, last = self._buckets.get(name, (2 * rate, now))
        level = min(2 * rate, level + (now - last) * rate)
        if level < 1:
            self._buckets[name] = (level, now)
            raise RequestError(
                f"token '{name}' is over {rate:g} requests per second",
                code="RTP406",
                hint="retry after a short pause",
            )
        self._buckets[name] = (level - 1, now)


async def _hang_up(request: Request, gone: threading.Event) -> None:
    """Set ``gone`` when ``request``'s client disconnects (the ASGI server's
    ``http.disconnect``). A body nobody read comes first (a GET's empty one); after it
    the server answers only at the disconnect. One that answers ``http.request`` again
    (some in-process test harnesses) tells nothing: then nothing is set."""
    message = await request.receive()
    if message["type"] == "http.request" and not message.get("more_body"):
        message = await request.receive()
    if message["type"] == "http.disconnect":
        gone.set()


def create_app(
    project: Project | Build, backend: Backend, settings: ServerSettings | None = None
) -> FastAPI:
    """The HTTP API for ``project`` (a Build, or a Project compiled here) on ``backend``
    (already deployed)."""
    settings = settings or ServerSettings()
    state = ServerState(project, backend, settings)
    deploy.attach_versions(state)  # the live version as staged; __stage=staging
    deploy.watch_versions(state)  # a server target: follow versions changed elsewhere
    project = state.project  # the model, whichever was given
    scheduler = Scheduler(state, timeout=settings.copy_timeout)
    state.scheduler = scheduler  # /healthz reports its copy pipes

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        if state.shared:  # tokens and deploys of the other servers of the target
            state.watcher = Watcher(state)
            state.watcher.start()
        if settings.schedules:
            scheduler.start()
        from rtp import connect  # Kafka consumers of the project (docs/connectors.md)
        from rtp.connect.runner import Consumers

        # consumers: off in all but one of rtp serve --workers N (rtp.cli.serve)
        state.consumers = state.metrics.consumers = (
            connect.start(project, backend, metrics=state.metrics)
            if settings.consumers
            else Consumers(backend, metrics=state.metrics)
        )
        yield
        state.stopping = True
        if state.watcher is not None:
            await asyncio.to_thread(state.watcher.stop)
        state.consumers.stop()
        await asyncio.to_thread(scheduler.stop)  # waits for a running copy (its deadline)
        state.executor.shutdown(wait=True)

    app = FastAPI(
        title=f"{project.name} (rtp)",
        openapi_url=None,
        docs_url=None,
        redoc_url=None,
        lifespan=lifespan,
    )
    app.state.rtp = state

    async def handle_rtp(request: Request, exc: RtpError) -> JSONResponse:
        if http_status(exc) >= 500:
            log.error("%s %s: %s", request.method, request.url.path, exc)
        return error_response(exc, settings)

    async def handle_validation(request: Request, exc: RequestValidationError):
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()))
        return JSONResponse(
            error_body(
                f"{where}: {first.get('msg', 'invalid request')}", "RTP400", settings.docs_url
            ),
            status_code=400,
        )

    async def handle_http(request: Request, exc: HTTPException):
        code = "RTP404" if exc.status_code == 404 else "RTP400"
        return JSONResponse(
            error_body(str(exc.detail), code, settings.docs_url), status_code=exc.status_code
        )

    async def handle_any(request: Request, exc: Exception):
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return JSONResponse(
            error_body(
                "internal error; the server log has the details", "RTP500", settings.docs_url
            ),
            status_code=500,
        )

    app.add_exception_handler(RtpError, handle_rtp)
    app.add_exception_handler(RequestValidationError, handle_validation)
    app.add_exception_handler(HTTPException, handle_http)
    app.add_exception_handler(Exception, handle_any)
    # pipes first: the endpoints are the hot path (its route leaves openapi.json alone);
    # pipes_info after openapi and pipes: /v0/pipes/{name} would match their paths too
    for module in (
        pipes,
        status,
        openapi,
        pipes_info,
        events,
        sql,
        deploy,
        datasources,
        tokens_api,
    ):
        app.include_router(module.router)
    state.pages = static.mount(app, project)  # static: folders of rtp.yaml, e.g. /storefront/
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(settings.cors_origins),
            allow_methods=["GET", "POST", "OPTIONS"],
            allow_headers=["Authorization", "Content-Type", "Content-Encoding"],
        )
    app.add_middleware(MetricsMiddleware, metrics=state.metrics)
    app.add_middleware(staging.RecentRequests, state=state)  # rtp deploy diff --recent

    return app


__all__ = ["create_app", "EngineError"]
