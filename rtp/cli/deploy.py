"""``rtp deploy``: bring a target to the project (``--plan`` shows what would change)."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.markup import escape

from rtp.cli.common import PROJECT_OPTION, TARGET_OPTION, load_valid, open_target
from rtp.cli.output import console, fail
from rtp.deploy import apply, plan
from rtp.errors import RtpError


def deploy(
    project: Path = PROJECT_OPTION,
    target: str = TARGET_OPTION,
    show_plan: bool = typer.Option(False, "--plan", help="Print the plan; change nothing."),
    sql: bool = typer.Option(False, "--sql", help="Also print each statement of the plan."),
    allow_destructive: bool = typer.Option(
        False, "--allow-destructive", help="Allow changes that can lose data (drops, "
        "rebuilds that drop columns or change the engine, TTL changes)."),
) -> None:
    """Create and migrate the project's tables and materialized views on the target.
    Re-running on an unchanged project changes nothing."""
    model, root = load_valid(project)
    backend = open_target(model, target, "rtp deploy")
    try:
        result = plan(model, backend)
        if show_plan:
            console.print(escape(result.render(sql=sql)))
            return
        for note in result.drift:
            console.print(f"[yellow]drift:[/yellow] {escape(note)}")
        if not result.pending:
            console.print(f"{escape(result.target)}: up to date, nothing to do.")
            return
        apply(result, backend, allow_destructive=allow_destructive,
              progress=lambda c: console.print(escape(c.describe())))
        console.print(f"[green]deployed[/green] {len(result.pending)} change(s) to "
                      f"{escape(result.target)}")
    except RtpError as exc:
        fail(exc, root)
        raise typer.Exit(1) from None
    finally:
        backend.close()
