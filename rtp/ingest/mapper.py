"""The row mapper: one datasource's columns, each with its JSON path and type checker."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from rtp.ingest.checks import CHECK_ERRORS, RowError, checker
from rtp.ingest.files import Record, ndjson
from rtp.ingest.paths import MISSING, by_name_getter, getter, parse_path, put
from rtp.project.model import Datasource


@dataclass(frozen=True)
class _Field:
    get: Callable  # event -> value or MISSING
    name: str
    path: str
    steps: tuple
    alt_steps: tuple | None  # by_name mappers: the JSON path, when the name is absent
    json_steps: tuple  # the column's JSON path, where to_event puts the value
    check: Callable
    nullable: bool
    has_default: bool


class RowMapper:
    """Maps JSON events onto one datasource's columns. Build once, use per request."""

    def __init__(self, datasource: Datasource, *, by_name: bool = False) -> None:
        """``by_name``: flat records (CSV, Parquet): read each column from the key of its
        name, or from its JSON path when the record has no such key."""
        self.datasource = datasource
        self.by_name = by_name
        self.fields = []
        # integers past 64 bits must be parsed by json to stay exact (see _ndjson)
        self.exact = any(re.search(r"\bU?Int(128|256)\b", c.type) for c in datasource.columns)
        for col in datasource.columns:
            check, nullable = checker(col.type)
            path = col.json_path or f"$.{col.name}"
            json_steps = parse_path(path)
            steps, alt = json_steps, None
            if by_name:
                alt = json_steps if json_steps != (col.name,) else None
                steps, path = (col.name,), f"$.{col.name}"
            has_default = col.default is not None
            get = by_name_getter(steps, alt, nullable, has_default) if by_name else getter(steps)
            self.fields.append(
                _Field(get, col.name, path, steps, alt, json_steps, check, nullable, has_default)
            )

    def map(self, obj) -> dict:
        """One event as a row. Raises RowError naming the column and the problem."""
        if not isinstance(obj, dict):
            raise RowError("an event must be a JSON object")
        row = {}
        for f in self.fields:
            value = f.get(obj)
            if value is MISSING or value is None:
                if f.has_default and value is MISSING:
                    continue
                if f.nullable:
                    row[f.name] = None
                    continue
                what = "missing" if value is MISSING else "null"
                raise RowError(
                    f"column '{f.name}' ({f.path}): {what}, and the column is not Nullable"
                )
            try:
                row[f.name] = f.check(value)
            except CHECK_ERRORS as exc:  # any value a checker can't read: this row only
                raise RowError(f"column '{f.name}' ({f.path}): {exc}") from None
        return row

    def to_event(self, obj: dict) -> dict:
        """A flat record (CSV, Parquet) as the JSON event that a JSON-path mapper of the
        same datasource reads the same way; values are not checked (the reader does).
        ``rtp append`` sends CSV and Parquet to a running server like this."""
        event: dict = {}
        for f in self.fields:
            value = f.get(obj)
            if value is MISSING:
                continue
            put(event, f.json_steps, value)
        return event

    def map_records(self, records: Iterable[Record]) -> tuple[list[dict], list[tuple[str, str]]]:
        """Records read from a file -> (rows ready to insert, [(error, raw)])."""
        rows, bad = [], []
        for record in records:
            if record.error is not None:
                bad.append((str(record.error), record.raw))
                continue
            try:
                rows.append(self.map(record.value))
            except RowError as exc:
                bad.append((str(exc), record.raw))
        return rows, bad

    def map_lines(self, lines: Iterable[bytes]) -> tuple[list[dict], list[tuple[str, str]]]:
        """NDJSON lines -> (rows ready to insert, [(error, raw line)]). Blank lines are
        skipped."""
        return self.map_records(ndjson(enumerate(lines, 1), self.exact))
