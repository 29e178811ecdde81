"""``rtp deploy``: bring a target to the project (``--plan`` shows what would change),
or stage it next to live (``--stage``) and ``promote``, ``rollback``, ``discard``,
``ls`` its versions (rtp/cli/versions.py).

An interrupted deploy (killed, or stopped by a failing statement) is finished first from
its journal in the target, then the project is planned again (see docs/deploy.md).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.markup import escape

from rtp.cli import remote, versions
from rtp.cli.common import (
    PROJECT_OPTION,
    TARGET_OPTION,
    built_valid,
    open_target,
    project_root,
)
from rtp.cli.output import console, exit_for, fail
from rtp.deploy.journal import Journal, find_unfinished
from rtp.errors import EngineError, RtpError
from rtp.ops import deploy as ops
from rtp.project.load import load_project

if TYPE_CHECKING:
    from rtp.engine import Backend


app = typer.Typer(
    help="Deploy the project to a target, straight to live or as a staged version.",
    invoke_without_command=True,
    no_args_is_help=False,
)
BREAK_LOCK_OPTION = versions.BREAK_LOCK


@app.callback()
def deploy(
    ctx: typer.Context,
    project: Path = PROJECT_OPTION,
    target: str = TARGET_OPTION,
    show_plan: bool = typer.Option(False, "--plan", help="Print the plan; change nothing."),
    sql: bool = typer.Option(False, "--sql", help="Also print each statement of the plan."),
    allow_destructive: bool = typer.Option(
        False,
        "--allow-destructive",
        help="Allow changes that can lose data (drops, "
        "rebuilds that drop columns or change the engine, TTL changes).",
    ),
    discard_journal: bool = typer.Option(
        False,
        "--discard-journal",
        help="Give up an interrupted deploy that can't be "
        "finished (its remaining steps are not run) and plan from the target as it is.",
    ),
    stage: bool = typer.Option(
        False,
        "--stage",
        help="Build the project as a new version next to live (nothing live changes); "
        "then `rtp deploy promote`.",
    ),
    break_lock: bool = BREAK_LOCK_OPTION,
) -> None:
    """Create and migrate the project's tables and materialized views on the target.
    Re-running on an unchanged project changes nothing. A project with errors (what
    `rtp check` reports) is refused before anything runs. With `--stage`, the changed
    objects are built next to live as a new version: `rtp deploy promote|rollback|
    discard|ls` (docs/deploy.md, "Versions")."""
    if ctx.invoked_subcommand is not None:
        return
    if stage:
        if show_plan or discard_journal or allow_destructive:
            console.print(
                "[red]--stage takes no --plan, --discard-journal or --allow-destructive[/red]"
                " (a staged version changes nothing live; `rtp deploy --plan` shows the "
                "changes)"
            )
            raise typer.Exit(2)
        versions.stage(project, target, break_lock)
        return
    root = project_root(project)
    try:
        model, _ = load_project(root)  # where to deploy; the server builds for itself
        server = remote.server_for(model, target)
        if server is not None:
            if discard_journal:
                raise EngineError(
                    "--discard-journal works on the engine directly",
                    code="RTP509",
                    hint=f"stop {server.command} (process {server.pid}) first",
                )
            _through(server, show_plan, allow_destructive, sql, break_lock)
            return
    except RtpError as exc:
        for problem in getattr(exc, "problems", []):  # the server's view of the files
            fail(problem, root)
        fail(exc, root)
        raise exit_for(exc) from None
    built = built_valid(root, check=True)
    backend = open_target(built.project, target, "rtp deploy")
    try:
        if discard_journal:
            _discard(backend)
        outcome = ops.deploy(
            built,
            backend,
            allow_destructive=allow_destructive,
            plan_only=show_plan,
            sql=sql,
            break_lock=break_lock,
            progress=lambda c: console.print(escape(c.describe())),
            announce=lambda u: console.print(f"[yellow]resuming[/yellow] {escape(u.describe())}"),
        )
    except RtpError as exc:
        fail(exc, root)
        raise exit_for(exc) from None
    finally:
        backend.close()
    if show_plan:
        console.print(escape(outcome.plan))
        return
    for note in outcome.drift:
        console.print(f"[yellow]drift:[/yellow] {escape(note)}")
    if outcome.up_to_date:
        console.print(f"{escape(outcome.target)}: up to date, nothing to do.")
        return
    console.print(
        f"[green]deployed[/green] {len(outcome.applied)} change(s) to {escape(outcome.target)}"
    )


def _discard(backend: Backend) -> None:
    unfinished = find_unfinished(backend)
    if unfinished is None:
        console.print("no interrupted deploy to discard")
        return
    Journal(backend, unfinished.deploy_id).finish()
    console.print(f"[yellow]discarded[/yellow] {escape(unfinished.describe())}")


def _through(
    server, show_plan: bool, allow_destructive: bool, sql: bool, break_lock: bool = False
) -> None:
    """Deploy through the server that holds the embedded database (it re-reads the
    project's files, plans, applies and serves the result)."""
    console.print(
        f"[dim]through the server of process {server.pid} ({server.command}) at {server.url}[/dim]"
    )
    answer = server.deploy(
        plan_only=show_plan, allow_destructive=allow_destructive, sql=sql, break_lock=break_lock
    )
    if show_plan:
        console.print(escape(answer["plan"]))
        return
    if answer.get("resumed"):
        console.print(f"[yellow]resumed[/yellow] {escape(answer['resumed'])}")
    for note in answer.get("drift", []):
        console.print(f"[yellow]drift:[/yellow] {escape(note)}")
    if answer.get("up_to_date"):
        console.print(f"{escape(answer['target'])}: up to date, nothing to do.")
        return
    for line in answer.get("applied", []):
        console.print(escape(line))
    console.print(
        f"[green]deployed[/green] {len(answer['applied'])} change(s) to {escape(answer['target'])}"
    )


app.command("promote")(versions.promote)
app.command("rollback")(versions.rollback)
app.command("discard")(versions.discard)
app.command("ls")(versions.ls)
app.command("diff")(versions.diff)
