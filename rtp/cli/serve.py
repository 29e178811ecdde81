"""``rtp serve``: the project's endpoints and event ingestion over HTTP (uvicorn)."""

from __future__ import annotations

import contextlib
import re
import secrets
import signal
from pathlib import Path

import typer

from rtp.cli.common import PROJECT_OPTION, TARGET_OPTION, project_root
from rtp.cli.output import console, err_console, exit_for, fail
from rtp.cli.token import tokens_file
from rtp.engine import owner
from rtp.engine.target import open_backend
from rtp.errors import RtpError
from rtp.project.load import load_project
from rtp.server import ServerSettings
from rtp.server.tokens import TokenStore

DEFAULT_PORT = 7181  # Tinybird Local's port, so SDK examples work unchanged


def control_token() -> str:
    """A fresh ADMIN credential for this server's life, published in ``.rtp/owner.json``
    (mode 0600) so that ``rtp sql``, ``rtp append`` and ``rtp deploy`` can work through
    the server. Whoever can read ``.rtp/`` can read the database files too, so it grants
    nothing new; it dies with the server."""
    return "rtp_control_" + secrets.token_urlsafe(32)


def announce_admin(root: Path) -> None:
    """Create the admin token on a project's first run and print it, once: only its hash
    is kept (in .rtp/tokens.json)."""
    admin = TokenStore(tokens_file(root)).ensure_admin()
    if admin:
        err_console.print("[bold]admin token[/bold] (shown once; stored hashed in "
                          ".rtp/tokens.json):")
        print(admin, flush=True)


_UNITS = {"": 1, "B": 1, "KB": 1000, "MB": 1000**2, "GB": 1000**3, "KIB": 1024,
          "MIB": 1024**2, "GIB": 1024**3, "TIB": 1024**4}


def parse_bytes(text: str) -> int:
    """``'2GiB'`` -> 2147483648. Raises typer.BadParameter."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*", text)
    if not m or m.group(2).upper() not in _UNITS:
        raise typer.BadParameter(f"not a size: {text!r} (e.g. 2GiB, 512MiB)")
    return int(float(m.group(1)) * _UNITS[m.group(2).upper()])


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
    host: str = typer.Option("127.0.0.1", "--host", help="Interface to listen on."),
    port: int = typer.Option(DEFAULT_PORT, "--port", help="TCP port."),
    target: str = TARGET_OPTION,
    cors: list[str] = typer.Option([], "--cors", help="Allowed browser origin (repeatable; "
                                   "default: any)."),
    timeout: float = typer.Option(10.0, "--timeout", help="Seconds from a request's "
                                  "arrival before its query answers 408."),
    max_memory: str = typer.Option("2GiB", "--max-memory", help="Memory one caller's "
                                   "query may use (ADMIN tokens: 4x)."),
    max_rows_to_read: int = typer.Option(1_000_000_000, "--max-rows-to-read",
                                         help="Rows one caller's query may read."),
    max_result_rows: int = typer.Option(1_000_000, "--max-result-rows",
                                        help="Rows one caller's answer may hold."),
    no_auth: bool = typer.Option(False, "--no-auth", help="Accept requests without "
                                 "tokens (local development only)."),
    project: Path = PROJECT_OPTION,
) -> None:
    """Serve the deployed project: `GET /v0/pipes/<name>.json`, `POST /v0/events`, OpenAPI at
    /v0/pipes/openapi.json, Swagger UI at /docs, /healthz and /metrics."""
    try:
        root = project_root(project)
        model, problems = load_project(root)
        url = f"http://{host}:{port}"
        backend = open_backend(model, target, command="rtp serve")
        control = control_token()
        owner.set_url(root, url, control)
    except RtpError as exc:
        fail(exc)
        raise exit_for(exc) from None
    try:
        settings = ServerSettings(
            tokens_file=None if no_auth else tokens_file(root), query_timeout=timeout,
            cors_origins=tuple(cors) or ("*",), control_token=control,
            max_memory_usage=parse_bytes(max_memory),
            admin_max_memory_usage=4 * parse_bytes(max_memory),
            max_rows_to_read=max_rows_to_read, max_result_rows=max_result_rows)
        if not no_auth:
            announce_admin(root)
        from rtp.server import create_app  # FastAPI loads only for this command

        app = create_app(model, backend, settings)
        errors = problems.errors + app.state.rtp.problems.errors
        if errors:
            err_console.print(f"[yellow]{len(errors)} problem(s) in the project; run "
                              "`rtp check`. Broken endpoints answer 400.[/yellow]")
        console.print(f"serving [bold]{model.name}[/bold] on {url} "
                      f"({len(app.state.rtp.endpoints)} endpoints; docs at {url}/docs)")
        for path in app.state.rtp.pages:
            console.print(f"pages at {url}{path}" + ("" if no_auth else "?token=<token>"),
                          soft_wrap=True, highlight=False)
        run_until_stopped(app, host, port)
    finally:
        backend.close()  # releases .rtp/owner.json
