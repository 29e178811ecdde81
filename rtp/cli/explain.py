"""``rtp explain PIPE key=value ...``: what each node of an endpoint costs on the target."""

from __future__ import annotations

import json
from enum import Enum
from pathlib import Path

import typer
from rich.table import Table

from rtp.cli.common import PROJECT_OPTION, TARGET_OPTION, built_valid, open_target, project_root
from rtp.cli.output import console, exit_for, fail
from rtp.errors import RequestError, RtpError


class Format(str, Enum):
    text = "text"
    json = "json"


def explain(
    pipe: str = typer.Argument(..., help="The endpoint pipe."),
    params: list[str] = typer.Argument(None, help="Parameter values: name=value ..."),
    project: Path = PROJECT_OPTION,
    target: str = TARGET_OPTION,
    runs: int = typer.Option(3, "--runs", min=1, help="Runs per node; the fastest counts."),
    format: Format = typer.Option(Format.text, "--format", "-f", help="text, or json for CI."),
) -> None:
    """Profile an endpoint: per node, the time, rows and bytes read, the primary-key
    granules selected of all (index use), and whether its result is cached. Each node runs
    with the nodes it reads, cached ones substituted as a warm cache serves them."""
    from rtp.query.explain import profile

    as_json = format is Format.json
    root = project_root(project)
    try:
        raw = _values(params or [])
    except RtpError as exc:
        fail(exc, root, as_json=as_json)
        raise exit_for(exc) from None
    built = built_valid(root, check=False)
    backend = open_target(built.project, target, "rtp explain")
    try:
        result = profile(built.compiled, backend, pipe, raw, runs=runs)
    except RtpError as exc:
        fail(exc, root, as_json=as_json)
        raise exit_for(exc) from None
    finally:
        backend.close()
    if as_json:
        print(json.dumps(result.as_dict(), indent=2))
        return
    _print(result)


def _values(items: list[str]) -> dict[str, str]:
    out = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise RequestError(
                f"'{item}' is not name=value", code="RTP400", hint="e.g. user_id=u1 limit=5"
            )
        out[name] = value
    return out


def _print(result) -> None:
    shown = " ".join(f"{k}={v}" for k, v in result.values.items()) or "(no parameters)"
    answer = f"; answers cached {result.cache_ttl:g} s" if result.cache_ttl else ""
    console.print(f"[bold]{result.pipe}[/bold] {shown} on {result.target}{answer}")
    table = Table("node", "ms", "rows", "rows read", "bytes read")
    table.add_column("granules read/all", no_wrap=True)
    table.add_column("cache", no_wrap=True)
    for node in result.nodes:
        reads = "\n".join(_reads(node.reads)) or ("-" if result.explained else "n/a")
        if node.cache_ttl is None:
            cache = "-"
        elif node.substituted:
            cache = f"{node.cache_ttl:g} s"
        else:
            cache = f"{node.cache_ttl:g} s, too large: runs"
        table.add_row(
            node.node,
            f"{node.seconds * 1000:.1f}",
            f"{node.rows:,}",
            f"{node.rows_read:,}",
            f"{node.bytes_read:,}",
            reads,
            cache,
        )
    console.print(table)
    if not result.explained:
        console.print("[dim]index use needs ClickHouse 21.6+ (EXPLAIN indexes = 1)[/dim]")


def _reads(reads) -> list[str]:
    """One line per table: its granules read of all, summed over the plan's reads of it
    (the node's and the nodes' it reads); ``(no key)`` when a read used no key."""
    tables: dict[str, list] = {}
    for read in reads:
        entry = tables.setdefault(read.table.rsplit(".", 1)[-1], [0, 0, False])
        entry[0] += read.granules[0]
        entry[1] += read.granules[1]
        entry[2] = entry[2] or read.condition == "true"
    return [
        f"{table} {selected}/{total}" + (" (no key)" if unkeyed else "")
        for table, (selected, total, unkeyed) in tables.items()
    ]
