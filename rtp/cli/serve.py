"""``rtp serve``: the project's endpoints and event ingestion over HTTP (uvicorn)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
from pathlib import Path

import typer

from rtp.cli.common import PROJECT_OPTION, project_root
from rtp.cli.output import console, err_console, fail
from rtp.cli.token import tokens_file
from rtp.errors import EngineError, RtpError
from rtp.project.load import load_project
from rtp.project.model import Project
from rtp.server import ServerSettings, create_app
from rtp.server.tokens import TokenStore

DEFAULT_PORT = 7181  # Tinybird Local's port, so SDK examples work unchanged


def open_backend(project: Project, target: str | None, url: str):
    """The project's engine: ``rtp.deploy.open_backend`` when it exists, else the
    embedded data folder (holding ``.rtp/owner.json`` so other commands can name us)."""
    try:
        from rtp.deploy import open_backend as deploy_open
    except ImportError:
        deploy_open = None
    if deploy_open is not None:
        return deploy_open(project, target)
    name = target or project.settings.default_target
    chosen = project.settings.target(name)
    if chosen is None:
        raise EngineError(f"there is no target '{name}' in rtp.yaml", code="RTP501",
                          hint="targets: " + ", ".join(t.name for t in project.settings.targets))
    if chosen.url != "embedded":
        raise EngineError(f"target '{name}' is a server; this build serves embedded only",
                          code="RTP501")
    from rtp.deploy.backends.embedded import EmbeddedBackend

    data = project.root / ".rtp" / "data"
    data.mkdir(parents=True, exist_ok=True)
    backend = EmbeddedBackend(str(data))
    owner = project.root / ".rtp" / "owner.json"
    owner.write_text(json.dumps({"pid": os.getpid(), "command": "rtp serve", "url": url}))
    return backend


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
    target: str = typer.Option(None, "--target", "-t", help="Target from rtp.yaml "
                               "(default: default_target)."),
    cors: list[str] = typer.Option([], "--cors", help="Allowed browser origin (repeatable; "
                                   "default: any)."),
    timeout: float = typer.Option(10.0, "--timeout", help="Seconds before a query "
                                  "answers 408."),
    no_auth: bool = typer.Option(False, "--no-auth", help="Accept requests without "
                                 "tokens (local development only)."),
    project: Path = PROJECT_OPTION,
) -> None:
    """Serve the deployed project: GET /v0/pipes/<name>.json, POST /v0/events, OpenAPI at
    /v0/pipes/openapi.json, Swagger UI at /docs, /healthz and /metrics."""
    try:
        root = project_root(project)
        model, problems = load_project(root)
        url = f"http://{host}:{port}"
        backend = open_backend(model, target, url)
    except RtpError as exc:
        fail(exc)
        raise typer.Exit(2) from None
    try:
        settings = ServerSettings(
            tokens_file=None if no_auth else tokens_file(root), query_timeout=timeout,
            cors_origins=tuple(cors) or ("*",))
        app = create_app(model, backend, settings)
        if not no_auth:
            admin = TokenStore(tokens_file(root)).ensure_admin()
            if admin:
                err_console.print("[bold]admin token[/bold] (shown once; stored hashed in "
                                  ".rtp/tokens.json):")
                print(admin, flush=True)
        errors = problems.errors + app.state.rtp.problems.errors
        if errors:
            err_console.print(f"[yellow]{len(errors)} problem(s) in the project; run "
                              "`rtp check`. Broken endpoints answer 400.[/yellow]")
        console.print(f"serving [bold]{model.name}[/bold] on {url} "
                      f"({len(app.state.rtp.endpoints)} endpoints; docs at {url}/docs)")
        run_until_stopped(app, host, port)
    finally:
        backend.close()
        with contextlib.suppress(OSError):
            owner = root / ".rtp" / "owner.json"
            if json.loads(owner.read_text()).get("pid") == os.getpid():
                owner.unlink()
