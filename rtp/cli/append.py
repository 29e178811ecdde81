"""``rtp append``: load a CSV, NDJSON or Parquet file (or URL) into a datasource."""

from __future__ import annotations

import csv
import io
import json
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

from rtp.cli.common import PROJECT_OPTION, TARGET_OPTION, load_valid, open_target
from rtp.cli.output import console, fail
from rtp.deploy.ingest import insert_rows, quarantine_table
from rtp.errors import ProjectError, RtpError

BATCH = 5000


def append(
    datasource: str = typer.Argument(..., help="The datasource to load into."),
    source: str = typer.Argument(..., help="A .csv, .ndjson/.jsonl or .parquet file or URL."),
    project: Path = PROJECT_OPTION,
    target: str = TARGET_OPTION,
) -> None:
    """Append rows to a datasource; rows that don't fit its schema go to
    `<datasource>_quarantine` with the reason."""
    model, root = load_valid(project)
    ds = model.datasources.get(datasource)
    if ds is None:
        fail(ProjectError(f"unknown datasource '{datasource}'", code="RTP107",
                          hint=f"datasources: {', '.join(model.datasources) or 'none'}"))
        raise typer.Exit(2)
    try:
        data, kind = read_source(source)
        rows = list(parse(data, kind))
    except RtpError as exc:
        fail(exc)
        raise typer.Exit(1) from None
    backend = open_target(model, target, "rtp append")
    ok = bad = 0
    try:
        with Progress(TextColumn(f"appending to {datasource}"), BarColumn(),
                      MofNCompleteColumn(), console=console, transient=True) as bar:
            task = bar.add_task("rows", total=len(rows))
            for start in range(0, len(rows), BATCH):
                batch = rows[start:start + BATCH]
                done, failed = insert_rows(backend, ds, batch, by_name=kind == "csv")
                ok, bad = ok + done, bad + failed
                bar.advance(task, len(batch))
    except RtpError as exc:
        fail(exc, root)
        raise typer.Exit(1) from None
    finally:
        backend.close()
    console.print(f"[green]appended[/green] {ok} row(s) to {datasource}")
    if bad:
        console.print(f"[yellow]{bad} row(s) quarantined[/yellow]: see "
                      f"`rtp sql \"SELECT * FROM {quarantine_table(datasource)}\"`")
        raise typer.Exit(1)


def read_source(source: str) -> tuple[bytes, str]:
    """The bytes of a file or URL and its kind (csv, ndjson, parquet).
    Raises ProjectError RTP505 when it can't be read."""
    name = source.split("?")[0].lower()
    kind = ("parquet" if name.endswith(".parquet") else "csv" if name.endswith(".csv")
            else "ndjson" if name.endswith((".ndjson", ".jsonl", ".json")) else None)
    if kind is None:
        raise ProjectError(f"can't tell the format of {source}", code="RTP505",
                           hint="name it .csv, .ndjson, .jsonl or .parquet")
    try:
        if source.startswith(("http://", "https://")):
            with urllib.request.urlopen(source, timeout=60) as response:  # noqa: S310
                return response.read(), kind
        return Path(source).read_bytes(), kind
    except (OSError, ValueError) as exc:
        raise ProjectError(f"cannot read {source}: {exc}", code="RTP505") from None


def parse(data: bytes, kind: str) -> Iterator[dict | str]:
    if kind == "ndjson":
        for line in data.decode("utf-8").splitlines():
            if line.strip():
                yield line
    elif kind == "csv":
        for row in csv.DictReader(io.StringIO(data.decode("utf-8"))):
            yield {k: v for k, v in row.items() if v != ""}  # empty: the column default
    else:
        try:
            import pyarrow.parquet as pq
        except ImportError:
            raise ProjectError("reading Parquet needs pyarrow", code="RTP505",
                               hint="pip install pyarrow") from None
        try:
            table = pq.read_table(io.BytesIO(data))
        except Exception as exc:  # pyarrow raises its own ArrowInvalid and OSError
            raise ProjectError(f"invalid Parquet: {exc}", code="RTP505") from None
        for row in table.to_pylist():
            yield json.loads(json.dumps(row, default=str))
