"""Datasources: create each table in the scratch engine; when ClickHouse refuses, find
which part of the file it refused.

The whole ``CREATE TABLE`` is tried first (one statement per datasource when all is well).
On failure the table is rebuilt part by part — columns, then each of
:data:`rtp.sql.ddl.TABLE_PARTS` (engine, sorting key, primary key, partition key, TTL,
settings, indexes) — and the first part whose addition fails is the one reported, at its
own line.
"""

from __future__ import annotations

import dataclasses
import re
from typing import TYPE_CHECKING

from rtp.engine import QueryError
from rtp.errors import SchemaError
from rtp.project.model import Datasource
from rtp.sql.ddl import TABLE_PARTS, create_table

if TYPE_CHECKING:
    from rtp.engine import Backend

_PROBE = "__rtp_probe"


def schemas(ctx) -> None:
    for ds in ctx.project.datasources.values():
        if not ds.columns:
            continue
        try:
            ctx.backend.execute(create_table(ds))
        except QueryError as exc:
            ctx.problems.add(_diagnose(ctx.backend, ds, exc))
            continue
        ctx.tables.add(ds.name)


def _try(backend: Backend, ds: Datasource) -> QueryError | None:
    try:
        backend.execute(create_table(ds, name=_PROBE))
    except QueryError as exc:
        return exc
    backend.execute(f"DROP TABLE IF EXISTS `{_PROBE}`")
    return None


def _diagnose(backend: Backend, ds: Datasource, whole: QueryError) -> SchemaError:
    bare = dataclasses.replace(ds, **{p.field: p.empty for p in TABLE_PARTS})
    # 1. columns alone
    if _try(backend, bare) is not None:
        for column in ds.columns:
            one = dataclasses.replace(bare, columns=(column,))
            exc = _try(backend, one)
            if exc is None:
                continue
            plain = _try(
                backend,
                dataclasses.replace(
                    bare, columns=(dataclasses.replace(column, default=None, codec=None),)
                ),
            )
            if plain is not None:
                return SchemaError(
                    f"invalid type for column '{column.name}': {_short(plain)}",
                    code="RTP200",
                    location=ds.loc(*column.path, "type"),
                    hint="see https://clickhouse.com/docs/sql-reference/data-types",
                )
            part = "default" if column.default else "codec"
            return SchemaError(
                f"invalid {part} for column '{column.name}': {_short(exc)}",
                code="RTP204",
                location=ds.loc(*column.path, part),
            )
        exc = _try(backend, bare)
        return SchemaError(
            f"columns rejected: {_short(exc)}", code="RTP200", location=ds.loc("columns")
        )
    # 2. each part, one at a time, in the order ClickHouse needs them (TABLE_PARTS)
    current = bare
    for part in TABLE_PARTS:
        if part.field == "indexes":  # one index at a time: the error names it
            for index in ds.indexes:
                current = dataclasses.replace(current, indexes=(*current.indexes, index))
                exc = _try(backend, current)
                if exc is not None:
                    return SchemaError(
                        f"invalid index '{index.name}': {_short(exc)}",
                        code=part.code,
                        location=ds.loc(*index.path),
                    )
            continue
        current = dataclasses.replace(current, **{part.field: part.value(ds)})
        exc = _try(backend, current)
        if exc is not None:
            key = part.field
            return SchemaError(
                f"invalid {key.replace('_', ' ')}: {_short(exc)}",
                code=part.code,
                location=_part_location(ds, key, exc),
                hint=part.hint,
            )
    return SchemaError(
        f"ClickHouse refused the table: {_short(whole)}", code="RTP200", location=ds.loc()
    )


def _part_location(ds: Datasource, key: str, exc: QueryError):
    if key == "engine":
        return ds.loc("engine")
    if key == "settings":
        m = re.search(r"setting '([^']+)'", exc.detail)
        if m and m.group(1) in dict(ds.settings):
            return ds.loc("settings", m.group(1), key=True)
    if key in ("sorting_key", "primary_key"):
        token = _token(exc)
        values = getattr(ds, key)
        for i, expr in enumerate(values):
            if token and re.search(rf"\b{re.escape(token)}\b", expr):
                return ds.loc(key, i)
    return ds.loc(key)


def _token(exc: QueryError) -> str | None:
    m = re.search(r"[`']([^`']+)[`']", exc.detail)
    return m.group(1) if m else None


def _short(exc: QueryError | None) -> str:
    if exc is None:
        return "unknown error"
    text = re.sub(r"\s*\(version [^)]*\)", "", exc.detail)
    text = text.replace(f"`{_PROBE}`", "table").replace(_PROBE, "table")
    return text if len(text) < 300 else text[:297] + "..."
