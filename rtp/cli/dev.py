"""``rtp dev``: deploy to the embedded engine, load fixtures into an empty engine, serve,
and redeploy on every file change (problems are printed; the server keeps running)."""

from __future__ import annotations

import os
import threading
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
    TIMEOUT_OPTION,
    project_root,
)
from rtp.cli.output import console, err_console, exit_for, fail, render_problem
from rtp.cli.serve import announce_admin, run_until_stopped, setting_flags, with_control
from rtp.cli.token import tokens_file
from rtp.engine.target import open_backend
from rtp.errors import RtpError
from rtp.ops import deploy as ops
from rtp.ops.build import build
from rtp.server.settings import server_settings
from rtp.server.tokens import TokenStore
from rtp.testing.fixtures import load_fixtures

PAGE_TOKEN = "dev_pages"  # re-created on every start; its text goes into the page URL


def page_token(path: Path) -> str:
    """A token for the project's pages (``static:`` in rtp.yaml), new on every start:
    read every endpoint and append to every datasource, never admin (a URL ends up in
    browser history)."""
    store = TokenStore(path)
    if any(t["name"] == PAGE_TOKEN for t in store.tokens):
        store.revoke(PAGE_TOKEN)
    return store.create(PAGE_TOKEN, ["PIPES:READ:*", "DATASOURCES:APPEND:*"])


def dev(
    ctx: typer.Context,
    host: str = HOST_OPTION,
    port: int = PORT_OPTION,
    no_auth: bool = typer.Option(False, "--no-auth", help="Accept requests without tokens."),
    interval: float = typer.Option(
        0.5,
        "--interval",
        help="Seconds between file checks where the OS gives no file events (else unused).",
    ),
    # the server settings, each named as the setting (read by setting_flags)
    cors_origins: list[str] = CORS_OPTION,
    query_timeout: str = TIMEOUT_OPTION,
    max_memory_usage: str = MAX_MEMORY_OPTION,
    max_body_bytes: str = MAX_BODY_OPTION,
    rate_limit: float = RATE_LIMIT_OPTION,
    schedules: bool = SCHEDULES_OPTION,
    project: Path = PROJECT_OPTION,
) -> None:
    """Develop locally: deploy to embedded ClickHouse, load fixtures/ if the engine is
    empty, serve, and redeploy whenever a project file changes (rtp.yaml, YAML, Tinybird
    .datasource/.pipe/.connection/.incl files anywhere but hidden folders, tests/ and
    fixtures/)."""
    try:
        root = project_root(project)
        built = build(root)  # once: what the first deploy and the server use
        model = built.project
        settings = server_settings(model, os.environ, setting_flags(ctx))
        if built.errors:
            for problem in built.sorted_problems():
                render_problem(problem, root, err_console)
            err_console.print(
                f"[red]{len(built.errors)} error(s)[/red]; fix them and run `rtp dev` again"
            )
            raise typer.Exit(2)
        backend = open_backend(model, "embedded", command="rtp dev")
        settings = with_control(settings, root, f"http://{host}:{port}", no_auth)
    except RtpError as exc:
        fail(exc, root if "root" in locals() else None)
        raise exit_for(exc) from None
    stop = threading.Event()
    try:
        ops.deploy(built, backend)
        from rtp.server import create_app  # FastAPI loads only for this command
        from rtp.server.dev import Reloader, is_empty

        if is_empty(model, backend):
            for name, (ok, bad) in load_fixtures(model, backend, quarantine=True).items():
                console.print(
                    f"  fixture [bold]{name}[/bold]: {ok} rows"
                    + (f", {bad} quarantined" if bad else "")
                )
        if not no_auth:
            announce_admin(root)
        app = create_app(built, backend, settings)
        reloader = Reloader(
            root,
            app.state.rtp,
            say=lambda text: console.print(f"[cyan]dev[/cyan] {text}"),
            report=lambda error: render_problem(error, root, err_console),
        )
        threading.Thread(
            target=reloader.watch, args=(stop, interval), daemon=True, name="rtp-dev-watch"
        ).start()
        url = f"http://{host}:{port}"
        console.print(
            f"[bold]{model.name}[/bold] on {url} (docs at {url}/docs); watching for changes"
        )
        pages = app.state.rtp.pages
        if pages:
            query = "" if no_auth else f"?token={page_token(tokens_file(root))}"
            for path in pages:
                console.print(
                    f"[bold green]open[/bold green] {url}{path}{query}",
                    soft_wrap=True,
                    highlight=False,
                )
        run_until_stopped(app, host, port)
    except RtpError as exc:
        fail(exc, root)
        raise exit_for(exc) from None
    finally:
        stop.set()
        backend.close()
