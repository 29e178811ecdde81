"""Options and steps shared by commands."""

from __future__ import annotations

from pathlib import Path

import typer

from rtp.project.load import find_root

PROJECT_OPTION = typer.Option(
    None,
    "--project",
    "-p",
    help="Project folder (default: the nearest folder above the current one holding rtp.yaml).",
    file_okay=False,
)
TARGET_OPTION = typer.Option(
    None,
    "--target",
    "-t",
    help="A target name from rtp.yaml, 'embedded', or a "
    "clickhouse://user:password@host:9000/database URL (default: $RTP_CLICKHOUSE_URL, "
    "then rtp.yaml's default_target).",
)

# options `rtp serve` and `rtp dev` share (server settings: docs/serve.md); a server
# setting's parameter is named as the setting (rtp.cli.serve.setting_flags reads it)
DEFAULT_PORT = 7181  # Tinybird Local's port, so SDK examples work unchanged
HOST_OPTION = typer.Option("127.0.0.1", "--host", help="Interface to listen on.")
PORT_OPTION = typer.Option(DEFAULT_PORT, "--port", help="TCP port.")
CORS_OPTION = typer.Option([], "--cors", help="Allowed browser origin (repeatable; default: any).")
TIMEOUT_OPTION = typer.Option(
    None,
    "--timeout",
    help="Seconds from a request's arrival before its query answers 408 (default 10).",
)
MAX_MEMORY_OPTION = typer.Option(
    None,
    "--max-memory",
    help="Memory one caller's query may use (default 2GiB; ADMIN tokens: 4x).",
)
MAX_BODY_OPTION = typer.Option(None, "--max-body-bytes", help="Largest request body (e.g. 10MiB).")
RATE_LIMIT_OPTION = typer.Option(
    None, "--rate-limit", help="Requests per second per token; 0 = unlimited."
)
SCHEDULES_OPTION = typer.Option(
    None, "--schedules/--no-schedules", help="Run scheduled copy pipes in this process."
)


def project_root(project: Path | None) -> Path:
    """The project's root folder. Raises ProjectError (RTP100) when there is none."""
    return find_root(project or Path.cwd())


def load_valid(project: Path | None):
    """(model, root) of a project without errors; prints the problems and exits 2
    otherwise."""
    from rtp.cli.output import console, render_problem
    from rtp.project.load import load_project

    root = project_root(project)
    model, problems = load_project(root)
    if problems.errors:
        for problem in problems.sorted():
            render_problem(problem, root)
        console.print("[red]the project has errors; run `rtp check`[/red]")
        raise typer.Exit(2)
    return model, root


def built_valid(root: Path, *, check: bool = True):
    """The project at ``root`` built once (rtp.ops.build) without errors; prints every
    problem and exits 2 otherwise. ``check``: run the check rules too (the gate of
    ``rtp check``, used before anything changes a target)."""
    from rtp.cli.output import console, render_problem
    from rtp.ops.build import build

    built = build(root, check=check)
    if built.errors:
        for problem in built.sorted_problems():
            render_problem(problem, root)
        console.print(f"[red]the project has {len(built.errors)} error(s)[/red]; run `rtp check`")
        raise typer.Exit(2)
    return built


def open_target(model, target: str | None, command: str):
    """The backend for ``target``; prints the error and exits 1 when it can't be opened."""
    from rtp.cli.output import exit_for, fail
    from rtp.engine.target import open_backend
    from rtp.errors import RtpError

    try:
        return open_backend(model, target, command=command)
    except RtpError as exc:
        fail(exc)
        raise exit_for(exc) from None
