"""``rtp copy run NAME``: run a copy pipe now."""

from __future__ import annotations

from pathlib import Path

import typer

from rtp.cli.common import PROJECT_OPTION, TARGET_OPTION, built_valid, open_target, project_root
from rtp.cli.output import console, exit_for, fail
from rtp.deploy.copy import run_copy
from rtp.errors import RtpError

app = typer.Typer(help="Copy pipes: insert a pipe's results into its target.", no_args_is_help=True)


@app.command("run")
def run(
    name: str = typer.Argument(..., help="The copy pipe."),
    project: Path = PROJECT_OPTION,
    target: str = TARGET_OPTION,
) -> None:
    """Run copy pipe NAME once (append or replace, as the pipe says)."""
    root = project_root(project)
    built = built_valid(root, check=False)
    model = built.project
    backend = open_target(model, target, "rtp copy run")
    try:
        count = run_copy(model, backend, name, compiled=built.compiled)
    except RtpError as exc:
        fail(exc, root)
        raise exit_for(exc) from None
    finally:
        backend.close()
    pipe = model.pipes[name]
    console.print(
        f"[green]copied[/green] {name} -> {pipe.target} ({pipe.mode}); "
        f"{pipe.target} has {count} row(s)"
    )
