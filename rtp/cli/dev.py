"""``rtp dev``: deploy to the embedded engine, load fixtures into an empty engine, serve,
and redeploy on every file change (problems are printed; the server keeps running)."""

from __future__ import annotations

import threading
from pathlib import Path

import typer

from rtp.cli.common import PROJECT_OPTION, project_root
from rtp.cli.output import console, err_console, exit_for, fail, render_problem
from rtp.cli.serve import DEFAULT_PORT, announce_admin, control_token, run_until_stopped
from rtp.cli.token import tokens_file
from rtp.deploy import deploy
from rtp.engine import owner
from rtp.engine.target import open_backend
from rtp.errors import RtpError
from rtp.project.load import load_project
from rtp.server import ServerSettings
from rtp.server.tokens import TokenStore
from rtp.sql.compose import compile_project
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
    host: str = typer.Option("127.0.0.1", "--host", help="Interface to listen on."),
    port: int = typer.Option(DEFAULT_PORT, "--port", help="TCP port."),
    no_auth: bool = typer.Option(False, "--no-auth", help="Accept requests without tokens."),
    interval: float = typer.Option(0.5, "--interval", help="Seconds between file checks "
                                   "where the OS gives no file events (else unused)."),
    project: Path = PROJECT_OPTION,
) -> None:
    """Develop locally: deploy to embedded ClickHouse, load fixtures/ if the engine is
    empty, serve, and redeploy whenever a project file changes (rtp.yaml, YAML, Tinybird
    .datasource/.pipe/.connection/.incl files anywhere but hidden folders, tests/ and
    fixtures/)."""
    try:
        root = project_root(project)
        model, problems = load_project(root)
        compile_project(model, problems)
        if problems.errors:
            for problem in problems.sorted():
                render_problem(problem, root, err_console)
            err_console.print(f"[red]{len(problems.errors)} error(s)[/red]; fix them and "
                              "run `rtp dev` again")
            raise exit_for(problems.errors[0])
        backend = open_backend(model, "embedded", command="rtp dev")
        control = control_token()
        owner.set_url(root, f"http://{host}:{port}", control)
    except RtpError as exc:
        fail(exc, root if "root" in locals() else None)
        raise exit_for(exc) from None
    stop = threading.Event()
    try:
        deploy(model, backend)
        from rtp.server import create_app  # FastAPI loads only for this command
        from rtp.server.dev import Reloader, is_empty

        if is_empty(model, backend):
            for name, (ok, bad) in load_fixtures(model, backend,
                                                          quarantine=True).items():
                console.print(f"  fixture [bold]{name}[/bold]: {ok} rows"
                              + (f", {bad} quarantined" if bad else ""))
        settings = ServerSettings(tokens_file=None if no_auth else tokens_file(root),
                                  control_token=control)
        if not no_auth:
            announce_admin(root)
        app = create_app(model, backend, settings)
        reloader = Reloader(root, app.state.rtp, deploy,
                            say=lambda text: console.print(f"[cyan]dev[/cyan] {text}"),
                            report=lambda error: render_problem(error, root, err_console))
        threading.Thread(target=reloader.watch, args=(stop, interval), daemon=True,
                         name="rtp-dev-watch").start()
        url = f"http://{host}:{port}"
        console.print(f"[bold]{model.name}[/bold] on {url} (docs at {url}/docs); "
                      "watching for changes")
        pages = app.state.rtp.pages
        if pages:
            query = "" if no_auth else f"?token={page_token(tokens_file(root))}"
            for path in pages:
                console.print(f"[bold green]open[/bold green] {url}{path}{query}",
                              soft_wrap=True, highlight=False)
        run_until_stopped(app, host, port)
    except RtpError as exc:
        fail(exc, root)
        raise exit_for(exc) from None
    finally:
        stop.set()
        backend.close()
