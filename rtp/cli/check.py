"""``rtp check``: validate every file of the project against a real engine."""

from __future__ import annotations

import json
import time
from enum import Enum
from pathlib import Path

import typer

from rtp.cli.common import PROJECT_OPTION, project_root
from rtp.cli.output import console, exit_for, fail, render_problem
from rtp.errors import Problems, RtpError
from rtp.ops.build import build


class Format(str, Enum):
    text = "text"
    json = "json"


def check(
    project: Path = PROJECT_OPTION,
    format: Format = typer.Option(
        Format.text, "--format", "-f", help="text for people, json for editors and CI."
    ),
    strict: bool = typer.Option(
        False,
        "--strict",
        help="Treat warnings as errors, and report endpoint nodes that read a table "
        "without its primary key (RTP311).",
    ),
) -> None:
    """Validate the project: YAML, schemas, templates, dependencies, and every node's SQL
    against embedded ClickHouse. Reports every problem; exits 1 if there is any error."""
    started = time.perf_counter()
    as_json = format is Format.json
    try:
        root = project_root(project)
        built = build(root, strict=strict)  # load, compile and the check rules, once
        model, problems = built.project, Problems(list(built.problems))
    except RtpError as exc:
        fail(exc, as_json=as_json)
        raise exit_for(exc) from None
    items = problems.sorted()
    errors = [p for p in items if p.severity == "error" or strict]
    warnings = [p for p in items if p not in errors]
    elapsed = time.perf_counter() - started
    summary = {
        "datasources": len(model.datasources),
        "pipes": len(model.pipes),
        "errors": len(errors),
        "warnings": len(warnings),
        "seconds": round(elapsed, 3),
    }
    if as_json:
        print(
            json.dumps(
                {"ok": not errors, "summary": summary, "problems": [p.to_dict() for p in items]},
                indent=2,
            )
        )
    else:
        for problem in items:
            render_problem(problem, root)
            console.print()
        what = f"{summary['datasources']} datasources, {summary['pipes']} pipes"
        if errors or warnings:
            color = "red" if errors else "yellow"
            console.print(
                f"[{color}]{len(errors)} error(s), {len(warnings)} warning(s)"
                f"[/{color}] in {what} ({elapsed:.2f}s)"
            )
        else:
            console.print(f"[green]ok[/green] {what} checked ({elapsed:.2f}s)")
    if errors:
        raise typer.Exit(1)
