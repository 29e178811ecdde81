"""Fixtures: ``fixtures/<datasource>.ndjson|.csv|.parquet`` loaded into a deployed engine.

Rows go in through the same column mapping as ingestion (each column's JSON path), so
materialized views fire on fixture inserts exactly as in production. A row that doesn't
fit the schema fails the run, naming the file and line.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path

from rtp.deploy.backends import QueryError
from rtp.deploy.ingest import to_columns
from rtp.errors import Location, ProjectError
from rtp.project.model import Datasource, Project

FORMATS = (".ndjson", ".jsonl", ".csv", ".parquet")


@dataclass
class FixtureRow:
    line: int  # 1-based line (NDJSON, CSV) or row number (Parquet)
    columns: dict


def fixture_files(project: Project) -> list[Path]:
    folder = project.root / project.settings.fixtures_dir
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.suffix in FORMATS and p.is_file())


def load_fixtures(project: Project, backend) -> dict[str, int]:
    """Insert every fixture file; returns rows loaded per datasource.

    Raises ProjectError: RTP602 for a fixture naming no datasource, RTP603 (with file and
    line) for a row that isn't JSON or that ClickHouse refuses.
    """
    loaded: dict[str, int] = {}
    for path in fixture_files(project):
        rel = path.relative_to(project.root).as_posix()
        ds = project.datasources.get(path.stem)
        if ds is None:
            raise ProjectError(
                f"fixture {rel} names no datasource", code="RTP602", location=Location(rel),
                hint="fixtures are named fixtures/<datasource>.ndjson|.csv|.parquet")
        rows = read_rows(path, rel, ds)
        insert(backend, ds, rows, rel)
        loaded[ds.name] = loaded.get(ds.name, 0) + len(rows)
    return loaded


def read_rows(path: Path, rel: str, ds: Datasource) -> list[FixtureRow]:
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        records = pq.read_table(path).to_pylist()
        return [FixtureRow(i + 1, to_columns(ds, r, by_name=True)) for i, r in enumerate(records)]
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".csv":
        reader = csv.DictReader(text.splitlines())
        return [FixtureRow(i + 2, to_columns(ds, r, by_name=True)) for i, r in enumerate(reader)]
    rows = []
    for n, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError as exc:
            raise ProjectError(f"fixture row is not JSON: {exc.msg}", code="RTP603",
                               location=Location(rel, n, exc.colno)) from None
        if not isinstance(record, dict):
            raise ProjectError("fixture row must be a JSON object", code="RTP603",
                               location=Location(rel, n, 1))
        rows.append(FixtureRow(n, to_columns(ds, record)))
    return rows


def insert(backend, ds: Datasource, rows: list[FixtureRow], rel: str) -> None:
    """All rows in one insert; if ClickHouse refuses, find the first row it refuses."""
    if not rows:
        return
    try:
        backend.insert_json(ds.name, [r.columns for r in rows])
        return
    except QueryError:
        pass
    for row in rows:  # the run fails anyway: find the row to name
        try:
            backend.insert_json(ds.name, [row.columns])
        except QueryError as exc:
            raise ProjectError(f"fixture row doesn't fit datasource '{ds.name}': {exc.detail}",
                               code="RTP603", location=Location(rel, row.line, 1),
                               hint=f"compare it with {ds.file}") from None
    raise ProjectError(f"ClickHouse refused the fixture rows of {rel} together",
                       code="RTP603", location=Location(rel))
