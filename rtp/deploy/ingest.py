"""Rows into a datasource, bad rows into ``<datasource>_quarantine``.

Shared by ``rtp append`` and the HTTP ingest endpoint. Each row (a dict, or a JSON text)
is mapped to columns through each column's JSON path (``$.product.id``); ClickHouse
judges the values: a batch that fails is split until the failing rows are found, and
those rows go to the quarantine table with ClickHouse's error and the raw row.
"""

from __future__ import annotations

import datetime as dt
import json
import re

from rtp.deploy.backends import QueryError
from rtp.project.model import Datasource

QUARANTINE_SUFFIX = "_quarantine"
_STEP = re.compile(r"\.([A-Za-z_][A-Za-z0-9_]*)|\[(\d+)\]|\['([^']*)'\]|\[\"([^\"]*)\"\]")
_MISSING = object()


def quarantine_table(datasource: str) -> str:
    return f"{datasource}{QUARANTINE_SUFFIX}"


def quarantine_ddl(datasource: str) -> str:
    """The quarantine table: when, why (ClickHouse's error) and the row as received."""
    return (f"CREATE TABLE IF NOT EXISTS `{quarantine_table(datasource)}` "
            "(`timestamp` DateTime, `error` String, `raw` String) "
            "ENGINE = MergeTree ORDER BY timestamp")


def extract(row: dict, path: str):
    """The value at a JSON path (``$.a.b``, ``$.a[0]``, ``$['a b']``) or _MISSING."""
    value = row
    rest = path[1:] if path.startswith("$") else path
    pos = 0
    while pos < len(rest):
        m = _STEP.match(rest, pos)
        if not m:
            return _MISSING
        key = m.group(1) or m.group(3) or m.group(4)
        if m.group(2) is not None:
            index = int(m.group(2))
            if not isinstance(value, list) or index >= len(value):
                return _MISSING
            value = value[index]
        elif isinstance(value, dict) and key in value:
            value = value[key]
        else:
            return _MISSING
        pos = m.end()
    return value


def to_columns(datasource: Datasource, row: dict, *, by_name: bool = False) -> dict:
    """Column name -> value for one row; missing paths are left out (column default).
    ``by_name`` reads flat rows (CSV) by column name instead of JSON path."""
    out = {}
    for column in datasource.columns:
        value = row.get(column.name, _MISSING) if by_name else extract(row, column.json_path)
        if value is _MISSING:
            continue
        if isinstance(value, dt.datetime):
            value = value.isoformat(sep=" ")
        elif isinstance(value, dt.date):
            value = value.isoformat()
        out[column.name] = value
    return out


def insert_rows(backend, datasource: Datasource, rows: list[dict | str], *,
                by_name: bool = False) -> tuple[int, int]:
    """Insert ``rows``; returns (rows inserted, rows quarantined). Raises EngineError
    only when the engine itself fails (the quarantine table can't be written).

    A batch goes in all or none, so keep batches well under ClickHouse's
    ``max_insert_block_size`` (about 1M rows); ``rtp append`` sends 5,000 at a time."""
    good: list[tuple[dict | str, dict]] = []
    bad: list[tuple[str, str]] = []
    for raw in rows:
        if isinstance(raw, str | bytes):
            try:
                parsed = json.loads(raw)
            except ValueError as exc:
                bad.append((f"invalid JSON: {exc}", _text(raw)))
                continue
            if not isinstance(parsed, dict):
                bad.append(("a row must be a JSON object", _text(raw)))
                continue
            good.append((raw, to_columns(datasource, parsed)))
        else:
            good.append((raw, to_columns(datasource, raw, by_name=by_name)))
    ok = _insert(backend, datasource.name, good, bad)
    if bad:
        backend.execute(quarantine_ddl(datasource.name))
        now = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S")
        backend.insert_json(quarantine_table(datasource.name),
                            [{"timestamp": now, "error": e, "raw": r} for e, r in bad])
    return ok, len(bad)


def _insert(backend, table: str, rows: list[tuple], bad: list[tuple[str, str]]) -> int:
    """Insert all, or split in halves until each failing row is isolated."""
    if not rows:
        return 0
    try:
        backend.insert_json(table, [mapped for _, mapped in rows])
        return len(rows)
    except QueryError as exc:
        if len(rows) == 1:
            bad.append((exc.detail, _text(rows[0][0])))
            return 0
    half = len(rows) // 2
    return _insert(backend, table, rows[:half], bad) + _insert(backend, table, rows[half:], bad)


def _text(raw) -> str:
    if isinstance(raw, bytes):
        return raw.decode("utf-8", "replace")
    if isinstance(raw, str):
        return raw
    return json.dumps(raw, ensure_ascii=False, default=str)
