"""``rtp test``: run the project's endpoint tests on a fresh in-memory engine."""

from __future__ import annotations

import time
from pathlib import Path

import typer

from rtp.cli.common import PROJECT_OPTION, project_root
from rtp.cli.output import console, exit_for, fail, render_problem
from rtp.errors import Problems, RtpError, SuiteError
from rtp.ops.build import build
from rtp.testing import report, runner


def test(
    pipes: list[str] = typer.Argument(None, help="Only the tests of these endpoints."),
    keyword: str = typer.Option(
        None, "-k", help="Only cases whose 'pipe::name' contains this text."
    ),
    update: bool = typer.Option(
        False,
        "--update",
        help="Rewrite expected_result of failing cases with what the endpoint answers now.",
    ),
    junit: Path = typer.Option(
        None, "--junit", help="Write a JUnit XML report here.", dir_okay=False
    ),
    project: Path = PROJECT_OPTION,
    target: str = typer.Option(
        None,
        "--target",
        help="`staging` or `live`: run the endpoint cases against that deploy version on "
        "the project's target (its data, not fixtures; docs/deploy.md, Versions).",
    ),
) -> None:
    """Deploy the project into a fresh in-memory ClickHouse, load fixtures/, and run
    `tests/<pipe>.yaml` against the endpoints (Tinybird's Forward and Classic test files
    too). Exit 0 all pass, 1 failures, 2 project or usage errors, or a bad test file (the
    other files still run)."""
    started = time.perf_counter()
    try:
        root = project_root(project)
        # built once; the engine the cases run on judges the SQL (check=False saves a
        # second scratch engine), load and template errors stop here as everywhere
        built = build(root, check=False)
        model, compiled = built.project, built.compiled
        file_problems = Problems()
        if not built.errors:
            cases = runner.prepare(compiled, file_problems)
    except RtpError as exc:
        fail(exc)
        raise exit_for(exc) from None
    if built.errors:
        for problem in Problems(built.errors).sorted():
            render_problem(problem, root)
        console.print(
            f"[red]{len(built.errors)} error(s)[/red]; fix them "
            "(`rtp check` shows the project's) and run again"
        )
        raise typer.Exit(2)
    for problem in file_problems.sorted():
        render_problem(problem, root)
    bad_files = len(file_problems.errors)
    if bad_files:
        console.print(
            f"[red]{bad_files} error(s) in test files[/red]: those cases are left "
            "out; the others run",
            markup=True,
        )
    unknown = [p for p in pipes or [] if p not in model.pipes]
    if unknown:
        error = SuiteError(f"no pipe named {', '.join(unknown)}", code="RTP600")
        fail(error)
        raise exit_for(error)
    selected = runner.select(cases, pipes, keyword)
    if not selected:
        console.print(
            "no test cases found"
            + (" matching the filter" if pipes or keyword else f" in {model.settings.tests_dir}/")
        )
        raise typer.Exit(2 if bad_files else 0)

    def show(o: runner.Outcome) -> None:
        mark = "[green]PASS[/green]" if o.passed else "[red]FAIL[/red]"
        console.print(f"  {mark} {o.case.id} [dim]{o.seconds * 1000:.1f} ms[/dim]")
        if not o.passed:
            console.print(f"       [dim]{o.case.location}[/dim]")
            for line in o.failures:
                console.print(f"       {line}", markup=False)
        for line in o.notes:
            console.print(f"       {line}", markup=False, style="dim")

    if target is not None:
        _on_version(root, selected, target, show, started)
        return
    try:
        session, outcomes = runner.run(compiled, selected, on_result=show)
    except RtpError as exc:
        fail(exc, root)
        raise exit_for(exc) from None
    elapsed = time.perf_counter() - started
    passed = sum(o.passed for o in outcomes)
    failed = len(outcomes) - passed
    loaded = sum(session.fixtures.values())
    copies = "".join(f", copy {name} ran ({rows} rows)" for name, rows in session.copies.items())
    console.print(
        f"[dim]setup {session.setup_seconds:.2f}s: deployed, {loaded} fixture rows "
        f"loaded{copies}; total {elapsed:.2f}s[/dim]"
    )
    fixed = []
    if update:
        fixed = report.update_expected(root, outcomes)
        for o in fixed:
            console.print(f"  [yellow]updated[/yellow] {o.case.id} in {o.case.file}")
            for line in o.failures:
                console.print(f"       was: {line}", markup=False)
    if junit:
        report.write_junit(junit, outcomes, elapsed)
    console.print(
        f"{passed} passed, {failed} failed"
        + (f", {bad_files} test file error(s)" if bad_files else ""),
        markup=False,
    )
    if bad_files:
        raise typer.Exit(2)
    if failed > len(fixed):
        raise typer.Exit(1)


def _on_version(root: Path, cases: list, target: str, show, started: float) -> None:
    """``--target staging|live``: the endpoint cases on that deploy version."""
    from rtp.cli import versions

    if target not in ("staging", "live"):
        console.print(f"[red]--target is staging or live, not {target!r}[/red]")
        raise typer.Exit(2)
    endpoint = [c for c in cases if c.kind == "endpoint"]
    if len(endpoint) < len(cases):
        console.print(
            f"[dim]{len(cases) - len(endpoint)} case(s) of SQL or commands run only on a "
            "fresh engine: left out[/dim]"
        )
    try:
        outcomes = versions.run_cases(root, endpoint, staged=target == "staging", show=show)
    except RtpError as exc:
        fail(exc, root)
        raise exit_for(exc) from None
    passed = sum(o.passed for o in outcomes)
    console.print(
        f"{passed} passed, {len(outcomes) - passed} failed on the {target} version "
        f"[dim]({time.perf_counter() - started:.2f}s)[/dim]"
    )
    if passed < len(outcomes):
        raise typer.Exit(1)
