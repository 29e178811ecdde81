"""``rtp serve``: the project's endpoints and event ingestion over HTTP (uvicorn).

``--workers N`` (server targets only) runs N processes on one listening socket, forked
from this one after the project is built and the tokens are set up: worker 0 runs the
scheduled copies and the Kafka consumers, every worker answers requests, and a worker
that dies is started again (rtp.cli.workers)."""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
from dataclasses import replace
from pathlib import Path

import typer

from rtp.cli.common import (
    CORS_OPTION,
    HOST_OPTION,
    MAX_BODY_OPTION,
    MAX_MEMORY_OPTION,
    PORT_OPTION,
    PROJECT_OPTION,
    RATE_LIMIT_OPTION,
    SCHEDULES_OPTION,
    TARGET_OPTION,
    TIMEOUT_OPTION,
    project_root,
)
from rtp.cli.output import console, err_console, exit_for, fail
from rtp.cli.token import tokens_file
from rtp.engine import owner
from rtp.engine.target import open_backend, resolve_target
from rtp.errors import Location, ProjectError, RtpError
from rtp.ops.build import build
from rtp.server.settings import FLAGS, ServerSettings, server_settings
from rtp.server.tokens_target import TargetTokenStore, token_store


def setting_flags(ctx: typer.Context) -> dict[str, object]:
    """The server settings given to this command as flags (``flags`` of
    rtp.server.settings.server_settings): its parameters named as a setting (``FLAGS``),
    in the order the command declares them (the first unreadable one is reported)."""
    return {p.name: ctx.params[p.name] for p in ctx.command.params if p.name in FLAGS}


def with_control(settings: ServerSettings, root: Path, url: str, no_auth: bool) -> ServerSettings:
    """``settings`` with a fresh control token (:func:`control_token`), published with
    ``url`` in ``.rtp/owner.json``, and the project's tokens file (none: ``no_auth``)."""
    control = control_token()
    owner.set_url(root, url, control)
    return replace(
        settings, control_token=control, tokens_file=None if no_auth else tokens_file(root)
    )


def control_token() -> str:
    """A fresh ADMIN credential for this server's life, published in ``.rtp/owner.json``
    (mode 0600) so that ``rtp sql``, ``rtp append`` and ``rtp deploy`` can work through
    the server. Whoever can read ``.rtp/`` can read the database files too, so it grants
    nothing new; it dies with the server."""
    return "rtp_control_" + secrets.token_urlsafe(32)


def announce_admin(root: Path, backend=None) -> None:
    """Create the admin token on a project's first run and print it, once: only its hash
    is kept (in .rtp/tokens.json, or in the target's ``_rtp_tokens`` when ``backend`` is
    a server). A server target that never had tokens first imports those of an existing
    ``.rtp/tokens.json``, once, and says so.

    Raises EngineError RTP501 when the target's tables are missing and can't be created.
    """
    store = token_store(backend, tokens_file(root))
    where = tokens_file(root).relative_to(root).as_posix()
    if isinstance(store, TargetTokenStore):
        where = "the target's _rtp_tokens"
        imported = store.import_file(tokens_file(root))
        if imported is not None:
            err_console.print(
                f"imported {imported} token(s) and the JWT secret from .rtp/tokens.json "
                "into the target (_rtp_tokens, _rtp_secrets), once: every rtp serve of "
                "this target uses them; the file is not read for this target any more"
            )
    admin = store.ensure_admin()
    if admin:
        err_console.print(f"[bold]admin token[/bold] (shown once; stored hashed in {where}):")
        print(admin, flush=True)


def require_server(model, target: str | None, count: int, flag: int | None) -> None:
    """Refuse several workers on the embedded target. Raises ProjectError RTP107."""
    if resolve_target(model, target) != "embedded":
        return
    if flag is not None:
        source = "--workers"
    elif "RTP_SERVER_WORKERS" in os.environ:
        source = "RTP_SERVER_WORKERS"
    else:
        source = "rtp.yaml"
    raise ProjectError(
        f"workers {count}: the embedded target is served by one process (chDB opens a "
        "project's database in one process only)",
        code="RTP107",
        location=Location(source),
        hint="serve a ClickHouse server target (--target clickhouse://...) to run several "
        "processes; in one process, `threads` sets how many engine calls run at once",
    )


def _exit(signum, frame):
    raise SystemExit(0)


def run_until_stopped(app, host: str, port: int) -> None:
    """uvicorn until SIGINT/SIGTERM. uvicorn re-raises the signal after its graceful
    shutdown; with this handler that becomes SystemExit, so callers' cleanup runs."""
    import uvicorn

    signal.signal(signal.SIGTERM, _exit)
    with contextlib.suppress(SystemExit, KeyboardInterrupt):
        uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False)


def serve(
    ctx: typer.Context,
    host: str = HOST_OPTION,
    port: int = PORT_OPTION,
    target: str = TARGET_OPTION,
    # the server settings, each named as the setting (read by setting_flags)
    cors_origins: list[str] = CORS_OPTION,
    query_timeout: str = TIMEOUT_OPTION,
    max_memory_usage: str = MAX_MEMORY_OPTION,
    max_rows_to_read: int = typer.Option(
        None, "--max-rows-to-read", help="Rows one caller's query may read."
    ),
    max_result_rows: int = typer.Option(
        None, "--max-result-rows", help="Rows one caller's answer may hold."
    ),
    max_bytes_to_read: str = typer.Option(
        None, "--max-bytes-to-read", help="Bytes one caller's query may read."
    ),
    max_result_bytes: str = typer.Option(
        None, "--max-result-bytes", help="Bytes one caller's answer may hold."
    ),
    admin_max_memory_usage: str = typer.Option(
        None, "--admin-max-memory", help="Memory an ADMIN token's query may use."
    ),
    sql_max_threads: int = typer.Option(
        None, "--sql-max-threads", help="Threads one /v0/sql query may use."
    ),
    ready_exclusive_max: str = typer.Option(
        None,
        "--ready-exclusive-max",
        help="Seconds a deploy may hold the engine before /readyz says 503.",
    ),
    max_body_bytes: str = MAX_BODY_OPTION,
    batch_wait: str = typer.Option(
        None, "--batch-wait", help="Seconds an ingest flush waits for more requests (e.g. 5ms)."
    ),
    batch_max_rows: int = typer.Option(
        None, "--batch-max-rows", help="Ingest batch flushed early at this many rows."
    ),
    max_pending_rows: int = typer.Option(
        None, "--max-pending-rows", help="Queued ingest rows beyond this answer 429."
    ),
    rate_limit: float = RATE_LIMIT_OPTION,
    threads: int = typer.Option(
        None, "--threads", help="Threads running blocking engine calls, per process."
    ),
    workers: int = typer.Option(
        None,
        "--workers",
        help="Server processes sharing the port (server targets only; worker 0 runs "
        "scheduled copies and Kafka consumers).",
    ),
    copy_timeout: str = typer.Option(
        None, "--copy-timeout", help="Engine deadline of each scheduled copy run (seconds)."
    ),
    schedules: bool = SCHEDULES_OPTION,
    print_settings: bool = typer.Option(
        False,
        "--print-settings",
        help="Print the "
        "settings this server would run with (flags > "
        "RTP_SERVER_* > rtp.yaml server: > defaults), "
        "as JSON, and exit.",
    ),
    no_auth: bool = typer.Option(
        False, "--no-auth", help="Accept requests without tokens (local development only)."
    ),
    project: Path = PROJECT_OPTION,
) -> None:
    """Serve the deployed project: `GET /v0/pipes/<name>.json`, `POST /v0/events`, OpenAPI at
    /v0/pipes/openapi.json, Swagger UI at /docs, /healthz and /metrics."""
    try:
        root = project_root(project)
        built = build(root, check=False)  # once; serves what is deployed
        model = built.project
        settings = server_settings(model, os.environ, setting_flags(ctx))
        if print_settings:
            print(json.dumps(settings.public(), indent=2))
            return
        url = f"http://{host}:{port}"
        if settings.workers > 1:
            require_server(model, target, settings.workers, workers)
        backend = open_backend(model, target, command="rtp serve")
        settings = with_control(settings, root, url, no_auth)
    except RtpError as exc:
        fail(exc)
        raise exit_for(exc) from None
    try:
        if not no_auth:
            announce_admin(root, backend)
        if settings.workers > 1:
            from rtp.cli.workers import serve_workers

            backend.close()  # each worker opens its own connections, after the fork
            serve_workers(built, target, settings, host, port)
            return
        from rtp.server import create_app  # FastAPI loads only for this command

        app = create_app(built, backend, settings)
        errors = built.errors
        if errors:
            err_console.print(
                f"[yellow]{len(errors)} problem(s) in the project; run "
                "`rtp check`. Broken endpoints answer 400.[/yellow]"
            )
        console.print(
            f"serving [bold]{model.name}[/bold] on {url} "
            f"({len(app.state.rtp.endpoints)} endpoints; docs at {url}/docs)"
        )
        for path in app.state.rtp.pages:
            console.print(
                f"pages at {url}{path}" + ("" if no_auth else "?token=<token>"),
                soft_wrap=True,
                highlight=False,
            )
        run_until_stopped(app, host, port)
    except RtpError as exc:
        fail(exc)
        raise exit_for(exc) from None
    finally:
        backend.close()  # releases .rtp/owner.json
