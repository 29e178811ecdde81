"""``rtp append``: load a CSV, NDJSON or Parquet file (or URL) into a datasource.

While ``rtp serve`` or ``rtp dev`` holds the embedded database, the rows are sent to its
``POST /v0/events`` (see :mod:`rtp.cli.remote`); CSV and Parquet records are turned into
JSON events client-side with the datasource's own column mapping. An NDJSON file loaded
into the embedded engine directly goes to it as text, in batches of lines, and the engine
checks each row's types (rtp.ingest.bodies).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import typer

from rtp.cli import remote
from rtp.cli.common import PROJECT_OPTION, TARGET_OPTION, load_valid, open_target
from rtp.cli.output import console, exit_for, fail
from rtp.errors import ProjectError, RequestError, RtpError
from rtp.ingest import (
    RowMapper,
    by_name,
    insert,
    kind_of,
    quarantine_table,
    read_records,
    supports_tokens,
)
from rtp.ingest.bodies import engine_checks, insert_bodies

BATCH = 5000


def append(
    datasource: str = typer.Argument(..., help="The datasource to load into."),
    source: str = typer.Argument(..., help="A .csv, .ndjson/.jsonl or .parquet file or URL."),
    project: Path = PROJECT_OPTION,
    target: str = TARGET_OPTION,
    dedupe: bool = typer.Option(
        True,
        "--dedupe/--no-dedupe",
        help="Each batch carries an idempotency key made of the file's content and the "
        "batch's place: running the same append again (after a crash) stores nothing "
        "twice. --no-dedupe appends the same file again on purpose.",
    ),
) -> None:
    """Append rows to a datasource; rows that don't fit its schema go to
    `<datasource>_quarantine` with the reason."""
    model, root = load_valid(project)
    ds = model.datasources.get(datasource)
    if ds is None:
        error = ProjectError(
            f"unknown datasource '{datasource}'",
            code="RTP107",
            hint=f"datasources: {', '.join(model.datasources) or 'none'}",
        )
        fail(error)
        raise exit_for(error)
    backend = None
    try:
        data, kind = read_source(source)
        mapper = RowMapper(ds, by_name=by_name(kind))
        server = remote.server_for(model, target)
        backend = None if server is not None else open_target(model, target, "rtp append")
        typed = engine_checks(backend, ds) if backend is not None and kind == "ndjson" else None
        if typed is not None:  # the lines as they are: the engine reads them
            records = [line for line in data.split(b"\n") if line.strip()]
        else:
            records = list(read_records(data, kind, exact=mapper.exact))
    except RtpError as exc:
        if backend is not None:
            backend.close()
        fail(exc)
        raise exit_for(exc) from None
    # the file's digest and each batch's first record: the same file sent again (a
    # retry) has the same keys, and the engine drops what it already stored
    digest = hashlib.sha256(data).hexdigest()[:32] if dedupe else None
    if server is not None:

        def send(batch, start):
            key = None if digest is None else f"append-{digest}-{start}"
            return server.append(ds.name, batch, mapper, kind, key=key)
    else:
        if digest is not None and not supports_tokens(backend):
            digest = None  # ClickHouse < 22.2: no insert deduplication (docs/ingest.md)

        def send(batch, start):
            token = None if digest is None else f"rtp:{ds.name}:append-{digest}-{start}"
            if typed is not None:
                body = b"\n".join(batch)
                return insert_bodies(backend, typed, mapper, [body], token=token)[0]
            return insert(backend, ds.name, *mapper.map_records(batch), token=token)

    ok = bad = 0
    try:
        # imported here: every command loads this module, only append needs these
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

        with Progress(
            TextColumn(f"appending to {datasource}"),
            BarColumn(),
            MofNCompleteColumn(),
            console=console,
            transient=True,
        ) as bar:
            task = bar.add_task("rows", total=len(records))
            for start in range(0, len(records), BATCH):
                batch = records[start : start + BATCH]
                done, failed = send(batch, start)
                ok, bad = ok + done, bad + failed
                bar.advance(task, len(batch))
    except RtpError as exc:
        fail(exc, root)
        raise exit_for(exc) from None
    finally:
        if backend is not None:
            backend.close()
    console.print(f"[green]appended[/green] {ok} row(s) to {datasource}")
    if bad:
        console.print(
            f"[yellow]{bad} row(s) quarantined[/yellow]: see "
            f'`rtp sql "SELECT * FROM {quarantine_table(datasource)}"`'
        )
        raise typer.Exit(1)


def read_source(source: str) -> tuple[bytes, str]:
    """The bytes of a file or URL and its kind (csv, ndjson, parquet).
    Raises RequestError RTP411 when it can't be read."""
    kind = kind_of(source)
    if kind is None:
        raise RequestError(
            f"can't tell the format of {source}",
            code="RTP411",
            hint="name it .csv, .ndjson, .jsonl or .parquet",
        )
    try:
        if source.startswith(("http://", "https://")):
            import urllib.request  # only for URLs

            with urllib.request.urlopen(source, timeout=60) as response:  # noqa: S310
                return response.read(), kind
        return Path(source).read_bytes(), kind
    except (OSError, ValueError) as exc:
        raise RequestError(f"cannot read {source}: {exc}", code="RTP411") from None
