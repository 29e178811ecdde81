"""Fixtures: ``fixtures/<datasource>.ndjson|.jsonl|.csv|.parquet`` loaded into a deployed
engine, by ``rtp test`` (strict) and ``rtp dev`` (bad rows quarantined).

Rows go in through the one ingestion path (:mod:`rtp.ingest`: JSON paths for
NDJSON, column names for CSV and Parquet, the same type checks as ``POST /v0/events``),
so materialized views fire on fixture inserts exactly as in production.
"""

from __future__ import annotations

from pathlib import Path

from rtp.engine import QueryError
from rtp.errors import Location, ProjectError
from rtp.ingest import (
    RowError,
    RowMapper,
    by_name,
    insert,
    kind_of,
    read_records,
    refused_rows,
)
from rtp.project.model import Project


def fixture_files(project: Project) -> list[Path]:
    folder = project.root / project.settings.fixtures_dir
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir()
                  if p.is_file() and p.suffix != ".json" and kind_of(p.name))


def load_fixtures(project: Project, backend, *,
                  quarantine: bool = False) -> dict[str, tuple[int, int]]:
    """Insert every fixture file; returns (rows inserted, rows quarantined) per
    datasource.

    ``quarantine`` False (``rtp test``): a bad row fails the load. Raises ProjectError
    RTP602 for a fixture naming no datasource and RTP603 (file and line) for a row that
    isn't JSON, doesn't fit the columns or that ClickHouse refuses; RTP505 for an
    unreadable Parquet file. ``quarantine`` True (``rtp dev``): bad rows go to
    ``<datasource>_quarantine`` and fixtures naming no datasource are skipped.
    EngineError when the engine fails.
    """
    done: dict[str, tuple[int, int]] = {}
    for path in fixture_files(project):
        rel = path.relative_to(project.root).as_posix()
        ds = project.datasources.get(path.stem)
        if ds is None:
            if quarantine:
                continue
            raise ProjectError(
                f"fixture {rel} names no datasource", code="RTP602", location=Location(rel),
                hint="fixtures are named fixtures/<datasource>.ndjson|.csv|.parquet")
        kind = kind_of(path.name)
        mapper = RowMapper(ds, by_name=by_name(kind))
        records = read_records(path.read_bytes(), kind, exact=mapper.exact)
        if quarantine:
            result = insert(backend, ds.name, *mapper.map_records(records))
        else:
            result = _insert_strict(backend, mapper, list(records), rel)
        before = done.get(ds.name, (0, 0))
        done[ds.name] = (before[0] + result[0], before[1] + result[1])
    return done


def _insert_strict(backend, mapper: RowMapper, records: list, rel: str) -> tuple[int, int]:
    """All rows in one insert, or a ProjectError naming the first bad row's line."""
    ds = mapper.datasource
    rows, lines = [], []
    for record in records:
        try:
            if record.error is not None:
                raise record.error
            rows.append(mapper.map(record.value))
        except RowError as exc:
            message = (f"fixture row is {exc}" if record.error is not None
                       else f"fixture row doesn't fit datasource '{ds.name}': {exc}")
            raise ProjectError(message, code="RTP603",
                               location=Location(rel, record.line, exc.column),
                               hint=f"compare it with {ds.file}") from None
        lines.append(record.line)
    try:
        insert(backend, ds.name, rows, [], retry_rows=False)
    except QueryError:
        # the run fails anyway: find the row to name
        refused = refused_rows(backend, ds.name, rows)
        if not refused:
            raise ProjectError(f"ClickHouse refused the fixture rows of {rel} together",
                               code="RTP603", location=Location(rel)) from None
        index, exc = refused[0]
        raise ProjectError(f"fixture row doesn't fit datasource '{ds.name}': "
                           f"ClickHouse refused it: {exc.detail}", code="RTP603",
                           location=Location(rel, lines[index], 1),
                           hint=f"compare it with {ds.file}") from None
    return len(rows), 0

