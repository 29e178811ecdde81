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
    connections: bool = typer.Option(
        False,
        "--connections",
        help="Also check each Kafka connection: broker reachable, topics exist, a sample "
        "of messages decodes into the columns (nothing is committed).",
    ),
    sample: int = typer.Option(10, "--sample", help="Messages sampled per topic."),
    timeout: float = typer.Option(
        5.0, "--timeout", metavar="SECONDS", help="How long a broker may take to answer."
    ),
) -> None:
    """Validate the project: YAML, schemas, templates, dependencies, and every node's SQL
    against embedded ClickHouse (with --connections, its Kafka brokers too). Reports every
    problem; exits 1 if there is any error."""
    started = time.perf_counter()
    as_json = format is Format.json
    try:
        root = project_root(project)
        built = build(root, strict=strict)  # load, compile and the check rules, once
        model, problems = built.project, Problems(list(built.problems))
    except RtpError as exc:
        fail(exc, as_json=as_json)
        raise exit_for(exc) from None
    reports = []
    if connections and not problems.errors:
        from rtp.connect.probe import check_connections

        reports, found = check_connections(model, samples=sample, timeout=timeout)
        problems.extend(found)
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
                {
                    "ok": not errors,
                    "summary": summary,
                    "problems": [p.to_dict() for p in items],
                    **({"connections": [r.to_dict() for r in reports]} if connections else {}),
                },
                indent=2,
            )
        )
    else:
        for problem in items:
            render_problem(problem, root)
            console.print()
        for r in reports:
            console.print(describe(r))
        if connections and problems.errors:
            console.print("connections not checked: the project has errors")
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


def describe(report) -> str:
    """One line per checked connection/datasource for people."""
    head = f"connection {report.connection} ({report.brokers or 'no brokers'})"
    if report.status == "inactive":
        return f"{head}: inactive (bootstrap_servers empty), not checked"
    if report.datasource is None:
        return f"{head}: {'reachable' if report.status == 'ok' else 'failed'}"
    line = f"{head} -> {report.datasource} <- topic {report.topic}: "
    if report.partitions is None:
        return line + "failed"
    line += f"{report.partitions} partition(s), {report.sampled} message(s) sampled"
    if report.failing:
        bad = ", ".join(f"{c} ({n})" for c, n in report.failing.items())
        return line + f"; failing: {bad}"
    return line + ("; all decode" if report.sampled else "; topic empty, nothing to decode")
