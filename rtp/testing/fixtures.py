"""Fixtures: ``fixtures/<datasource>.ndjson|.jsonl|.csv|.parquet`` loaded into a deployed
engine, by ``rtp test`` (strict) and ``rtp dev`` (bad rows quarantined).

Tinybird's layouts are read too: Classic keeps fixtures in ``datasources/fixtures/``;
Forward loads one file per datasource, ``.ndjson`` before ``.csv``, and when there is
neither, the rows of ``fixtures/<datasource>.sql`` (a SELECT, as ``tb mock`` writes it),
run in the test engine. In a folder read without ``rtp.yaml`` (a Tinybird project), a
fixture naming no datasource is skipped, as Tinybird does.

Rows go in through the one ingestion path (:mod:`rtp.ingest`: JSON paths for
NDJSON, column names for CSV and Parquet, the same type checks as ``POST /v0/events``),
so materialized views fire on fixture inserts exactly as in production.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from rtp.engine import QueryError
from rtp.errors import Location, RtpError, SuiteError
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

if TYPE_CHECKING:
    from rtp.engine import Backend

CLASSIC_DIR = "datasources/fixtures"
ORDER = (".ndjson", ".jsonl", ".csv", ".parquet", ".sql")  # Tinybird: .ndjson, .csv, .sql


def fixture_files(project: Project) -> list[Path]:
    """One file per name: the first of ``ORDER``, from ``fixtures/`` before Classic's
    ``datasources/fixtures/``."""
    chosen: dict[str, Path] = {}
    for rel in (project.settings.fixtures_dir, CLASSIC_DIR):
        folder = project.root / rel
        if not folder.is_dir():
            continue
        found = [
            p
            for p in folder.iterdir()
            if p.is_file() and p.suffix in ORDER and (p.suffix == ".sql" or kind_of(p.name))
        ]
        for path in sorted(found, key=lambda p: (p.stem, ORDER.index(p.suffix))):
            chosen.setdefault(path.stem, path)
    return sorted(chosen.values(), key=lambda p: p.stem)


def load_fixtures(
    project: Project, backend: Backend, *, quarantine: bool = False
) -> dict[str, tuple[int, int]]:
    """Insert every fixture file; returns (rows inserted, rows quarantined) per
    datasource.

    ``quarantine`` False (``rtp test``): a bad row fails the load. Raises SuiteError
    RTP602 for a fixture naming no datasource and RTP603 (file and line) for a row that
    isn't JSON, doesn't fit the columns or that ClickHouse refuses; RTP505 for an
    unreadable Parquet file. ``quarantine`` True (``rtp dev``): bad rows go to
    ``<datasource>_quarantine`` and fixtures naming no datasource are skipped.
    EngineError when the engine fails.
    """
    done: dict[str, tuple[int, int]] = {}
    tinybird = not (project.root / "rtp.yaml").is_file()
    for path in fixture_files(project):
        rel = path.relative_to(project.root).as_posix()
        ds = project.datasources.get(path.stem)
        if ds is None:
            if quarantine or tinybird or rel.startswith(CLASSIC_DIR + "/"):
                continue
            raise SuiteError(
                f"fixture {rel} names no datasource",
                code="RTP602",
                location=Location(rel),
                hint="fixtures are named fixtures/<datasource>.ndjson|.csv|.parquet",
            )
        if path.suffix == ".sql":
            kind = "ndjson"
            data = _sql_rows(backend, path, rel)
        else:
            kind = kind_of(path.name)
            data = path.read_bytes()
        mapper = RowMapper(ds, by_name=by_name(kind))
        records = read_records(data, kind, exact=mapper.exact)
        if quarantine:
            result = insert(backend, ds.name, *mapper.map_records(records))
        else:
            result = _insert_strict(backend, mapper, list(records), rel)
        before = done.get(ds.name, (0, 0))
        done[ds.name] = (before[0] + result[0], before[1] + result[1])
    return done


def _sql_rows(backend: Backend, path: Path, rel: str) -> bytes:
    """The NDJSON rows of a ``.sql`` fixture's query, run in the test engine (Tinybird
    runs it, keeps its rows as the fixture and appends them as NDJSON).

    Raises SuiteError RTP603 when the query is not one read-only statement or the
    engine refuses it."""
    from rtp.sql.guard import guard_query

    sql = path.read_text(encoding="utf-8")
    try:
        sql = guard_query(sql, admin=True).sql
        return backend.query_bytes(sql, "JSONEachRow")
    except (QueryError, RtpError) as exc:
        detail = getattr(exc, "detail", None) or getattr(exc, "message", str(exc))
        raise SuiteError(
            f"fixture query failed: {detail}", code="RTP603", location=Location(rel, 1, 1)
        ) from None


def _insert_strict(backend: Backend, mapper: RowMapper, records: list, rel: str) -> tuple[int, int]:
    """All rows in one insert, or a SuiteError naming the first bad row's line."""
    ds = mapper.datasource
    rows, lines = [], []
    for record in records:
        try:
            if record.error is not None:
                raise record.error
            rows.append(mapper.map(record.value))
        except RowError as exc:
            message = (
                f"fixture row is {exc}"
                if record.error is not None
                else f"fixture row doesn't fit datasource '{ds.name}': {exc}"
            )
            raise SuiteError(
                message,
                code="RTP603",
                location=Location(rel, record.line, exc.column),
                hint=f"compare it with {ds.file}",
            ) from None
        lines.append(record.line)
    try:
        insert(backend, ds.name, rows, [], retry_rows=False)
    except QueryError:
        # the run fails anyway: find the row to name
        refused = refused_rows(backend, ds.name, rows)
        if not refused:
            raise SuiteError(
                f"ClickHouse refused the fixture rows of {rel} together",
                code="RTP603",
                location=Location(rel),
            ) from None
        index, exc = refused[0]
        raise SuiteError(
            f"fixture row doesn't fit datasource '{ds.name}': ClickHouse refused it: {exc.detail}",
            code="RTP603",
            location=Location(rel, lines[index], 1),
            hint=f"compare it with {ds.file}",
        ) from None
    return len(rows), 0
