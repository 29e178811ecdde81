"""``rtp deploy --stage``, ``promote``, ``rollback``, ``discard``, ``ls``: a target's
deploy versions (docs/deploy.md, "Versions").

Each runs on the target directly, or, while ``rtp serve``/``rtp dev`` holds the embedded
database, through that server (``POST /v0/deploy`` with an ``action``), which then
serves what it made live.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import typer
from rich.markup import escape

from rtp.cli import remote
from rtp.cli.common import PROJECT_OPTION, TARGET_OPTION, built_valid, open_target, project_root
from rtp.cli.output import console, exit_for, fail
from rtp.errors import RequestError, RtpError
from rtp.ops import stage as ops
from rtp.project.load import load_project

BREAK_LOCK = typer.Option(
    False,
    "--break-lock",
    help="Free the target's deploy lock held by another deploy (only when it died).",
)


def _run(project: Path | None, target: str | None, action: str, local: Callable, **flags) -> dict:
    """``local(backend, root)`` on the target, or ``action`` through the server that
    holds it; prints the error and exits on failure."""
    root = project_root(project)
    try:
        model, _ = load_project(root)
        server = remote.server_for(model, target)
        if server is not None:
            console.print(
                f"[dim]through the server of process {server.pid} ({server.command}) "
                f"at {server.url}[/dim]"
            )
            return server.lifecycle(action, **flags)
    except RtpError as exc:
        for problem in getattr(exc, "problems", []):
            fail(problem, root)
        fail(exc, root)
        raise exit_for(exc) from None
    backend = open_target(model, target, f"rtp deploy {action}")
    try:
        return local(backend, root)
    except RtpError as exc:
        fail(exc, root)
        raise exit_for(exc) from None
    finally:
        backend.close()


def _outer(ctx: typer.Context, project: Path | None, target: str | None):
    """``--project``/``--target`` given before the subcommand (``rtp deploy -p X ls``)
    count when not given after it."""
    outer = (ctx.parent.params if ctx.parent is not None else {}) or {}
    return project or outer.get("project"), target or outer.get("target")


def _show(answer: dict) -> None:
    if answer.get("resumed"):
        console.print(f"[yellow]resumed[/yellow] {escape(answer['resumed'])}")
    for line in answer.get("applied", []):
        console.print(escape(line))
    console.print(f"[green]{escape(answer['message'])}[/green] ({escape(answer['target'])})")


def _progress(change) -> None:
    console.print(escape(change.describe()))


def stage(project: Path | None, target: str | None, break_lock: bool) -> None:
    """``rtp deploy --stage``."""

    def local(backend, root):
        built = built_valid(root, check=True)
        return ops.stage(built, backend, break_lock=break_lock, progress=_progress).as_dict()

    answer = _run(project, target, "stage", local, break_lock=break_lock)
    if answer.get("changed"):
        console.print(f"changed: {escape(', '.join(answer['changed']))}")
    _show(answer)


def promote(
    ctx: typer.Context,
    project: Path = PROJECT_OPTION,
    target: str = TARGET_OPTION,
    break_lock: bool = BREAK_LOCK,
) -> None:
    """Make the staged version live; the live one is kept for `rtp deploy rollback`
    (`deploy: keep:` in rtp.yaml; older versions are dropped)."""
    project, target = _outer(ctx, project, target)

    def local(backend, root):
        model, _ = load_project(root)
        return ops.promote(
            backend, keep=model.settings.deploy_keep, break_lock=break_lock, progress=_progress
        ).as_dict()

    _show(_run(project, target, "promote", local, break_lock=break_lock))


def rollback(
    ctx: typer.Context,
    project: Path = PROJECT_OPTION,
    target: str = TARGET_OPTION,
    break_lock: bool = BREAK_LOCK,
) -> None:
    """Make the previous version live again (names are swapped back: nothing is
    rebuilt). Running it again goes forward again."""
    project, target = _outer(ctx, project, target)

    def local(backend, root):
        return ops.rollback(backend, break_lock=break_lock, progress=_progress).as_dict()

    _show(_run(project, target, "rollback", local, break_lock=break_lock))


def discard(
    ctx: typer.Context,
    project: Path = PROJECT_OPTION,
    target: str = TARGET_OPTION,
    break_lock: bool = BREAK_LOCK,
) -> None:
    """Drop the staged version (its tables and views); live is untouched."""
    project, target = _outer(ctx, project, target)

    def local(backend, root):
        return ops.discard(backend, break_lock=break_lock, progress=_progress).as_dict()

    _show(_run(project, target, "discard", local, break_lock=break_lock))


def ls(ctx: typer.Context, project: Path = PROJECT_OPTION, target: str = TARGET_OPTION) -> None:
    """List the target's versions: number, status, when it was created, what changed."""
    project, target = _outer(ctx, project, target)
    answer = _run(project, target, "ls", lambda backend, root: {"versions": ops.versions(backend)})
    rows = answer["versions"]
    if not rows:
        console.print("no versions: nothing was staged on this target yet")
        return
    console.print(f"{'version':>7}  {'status':<10} {'created (UTC)':<19}  changed")
    for row in rows:
        changed = ", ".join(row["changed"]) or "-"
        console.print(
            f"{row['version']:>7}  {row['status']:<10} {row['created_at']:<19}  {escape(changed)}",
            highlight=False,
        )


def diff(
    ctx: typer.Context,
    requests: Path = typer.Argument(
        None,
        help="A file of requests, one a line: `/v0/pipes/NAME.json?param=value` "
        "(or `NAME?param=value`); blank lines and # comments are skipped.",
        exists=True,
        dir_okay=False,
    ),
    recent: int = typer.Option(
        0,
        "--recent",
        help="Also the last N endpoint requests the running server answered (the server "
        "that holds the embedded database).",
    ),
    strict: bool = typer.Option(False, "--strict", help="Exit 1 when an answer differs."),
    project: Path = PROJECT_OPTION,
    target: str = TARGET_OPTION,
) -> None:
    """Run requests against live and the staged version; show the answers that differ
    and the latency of each side."""
    from rtp.cli.diff import answerer, recorded, split

    project, target = _outer(ctx, project, target)

    lines = []
    if requests is not None:
        lines = [
            line.strip()
            for line in requests.read_text("utf-8").splitlines()
            if line.strip() and not line.strip().startswith("#")
        ]
    root = project_root(project)
    try:
        if recent:
            lines += recorded(root, target, recent)
        if not lines:
            raise RequestError(
                "no requests to compare",
                code="RTP400",
                hint="give a file of requests, or --recent N while a server runs",
            )
        with answerer(root, target) as ask:

            def answer(request: str, staged: bool) -> tuple[object, float]:
                name, _, params = split(request)
                got = ask(name, params, staged)
                return got.value, got.seconds

            results = ops.compare(lines, answer)
    except RtpError as exc:
        fail(exc, root)
        raise exit_for(exc) from None
    differ = [r for r in results if not r.same]
    console.print(f"{'live ms':>8} {'staging ms':>10}  request", highlight=False)
    for r in results:
        mark = "[green]same[/green]" if r.same else "[red]DIFF[/red]"
        if r.failed:
            mark += " [yellow](an error)[/yellow]"
        console.print(
            f"{r.live_ms:8.1f} {r.staging_ms:10.1f}  {mark} {escape(r.request)}", highlight=False
        )
        if not r.same or r.failed:
            console.print(f"      live:    {escape(r.live)}", highlight=False)
            console.print(f"      staging: {escape(r.staging)}", highlight=False)
    if results:
        live = sorted(r.live_ms for r in results)[len(results) // 2]
        staged = sorted(r.staging_ms for r in results)[len(results) // 2]
        console.print(
            f"{len(results)} request(s), {len(differ)} differ; median latency live "
            f"{live:.1f} ms, staging {staged:.1f} ms",
            highlight=False,
        )
    if strict and differ:
        raise typer.Exit(1)


def run_cases(root: Path, cases: list, *, staged: bool, show: Callable) -> list:
    """``rtp test --target staging|live``: the endpoint cases against that deploy version
    on the project's target (through the server that holds the embedded database, if
    one does), judged as ``rtp test`` judges them. Raises RtpError (RTP516: nothing
    staged)."""
    from rtp.cli.diff import answerer
    from rtp.testing.runner import Outcome, judge

    outcomes = []
    with answerer(root, None) as ask:
        for case in cases:
            got = ask(case.pipe, dict(case.parameters), staged)
            outcome = Outcome(case, got.seconds, status=got.status, error=got.error)
            outcome.rows, outcome.statistics = got.rows, got.statistics
            outcome.failures = judge(case, outcome)
            outcomes.append(outcome)
            show(outcome)
    return outcomes
