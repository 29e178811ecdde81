"""``rtp sql``: run a query on the target and print the result."""

from __future__ import annotations

import csv
import json
import sys
from enum import Enum
from pathlib import Path

import typer
from rich.table import Table

from rtp.cli import remote
from rtp.cli.common import PROJECT_OPTION, TARGET_OPTION, load_valid, open_target
from rtp.cli.output import console, exit_for, fail
from rtp.errors import RtpError


class Format(str, Enum):
    table = "table"
    json = "json"
    csv = "csv"


def sql(
    query: str = typer.Argument(..., help='The SQL to run, e.g. "SELECT count() FROM events".'),
    project: Path = PROJECT_OPTION,
    target: str = TARGET_OPTION,
    format: Format = typer.Option(Format.table, "--format", "-f", help="table, json or csv."),
) -> None:
    """Run SQL on the target (the user's text is sent as written)."""
    model, root = load_valid(project)
    try:
        server = remote.server_for(model, target)
    except RtpError as exc:
        fail(exc, root)
        raise exit_for(exc) from None
    # while a server holds the embedded database, the query runs there (read-only)
    backend = server or open_target(model, target, "rtp sql")
    try:
        columns, rows = backend.query(query)
    except RtpError as exc:
        fail(exc, root)
        raise exit_for(exc) from None
    finally:
        if server is None:
            backend.close()
    names = [c[0] for c in columns]
    if format is Format.json:
        print(
            json.dumps(
                {
                    "meta": [{"name": n, "type": t} for n, t in columns],
                    "data": [dict(zip(names, r, strict=True)) for r in rows],
                    "rows": len(rows),
                },
                indent=2,
                default=str,
            )
        )
    elif format is Format.csv:
        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow(names)
        writer.writerows(rows)
    else:
        table = Table(*names, show_lines=False)
        for row in rows:
            table.add_row(*("NULL" if v is None else str(v) for v in row))
        console.print(table)
        console.print(f"[dim]{len(rows)} row(s)[/dim]")
