"""The one insert path: mapped rows into a datasource, bad rows into its quarantine."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable
from typing import TYPE_CHECKING

from rtp.engine import MIN_VERSIONS, QueryError, version_tuple
from rtp.ingest.files import Record, ndjson
from rtp.ingest.mapper import RowMapper
from rtp.ingest.quarantine import quarantine_ddl, quarantine_table
from rtp.project.model import Datasource

if TYPE_CHECKING:
    from rtp.engine import Backend


def insert_rows(
    backend: Backend,
    datasource: Datasource,
    records: Iterable[dict | str | bytes],
    *,
    by_name: bool = False,
) -> tuple[int, int]:
    """Map and insert ``records`` (parsed objects, or NDJSON lines); returns (rows
    inserted, rows quarantined). Raises as :func:`insert`. A batch goes in all or none,
    so keep batches well under ClickHouse's ``max_insert_block_size`` (about 1M rows)."""

    def as_records():
        for n, item in enumerate(records, 1):
            if isinstance(item, str | bytes):
                yield from ndjson([(n, item)], mapper.exact)
            else:
                yield Record(n, item, item)

    mapper = RowMapper(datasource, by_name=by_name)
    rows, bad = mapper.map_records(as_records())
    return insert(backend, datasource.name, rows, bad)


def insert(
    backend: Backend,
    datasource: str,
    rows: list[dict],
    bad: list[tuple[str, str]],
    ensured: set | None = None,
    *,
    retry_rows: bool = True,
    token: str | None = None,
) -> tuple[int, int]:
    """Insert mapped ``rows`` into ``datasource`` and ``bad`` into its quarantine table;
    returns (rows inserted, rows quarantined). Blocking; the rows are durable when it
    returns. If the engine refuses the batch, it is split in halves until the refused
    rows are found; they are quarantined with ClickHouse's message (and the mapped row).

    ``token`` makes the call idempotent: called again with the same token and rows (a
    client's retry after a crash), it stores nothing twice, in the datasource, its
    views' targets and the quarantine; and it fills in what a crash left out (a view
    target's block). Every insert it makes carries a token derived from it.

    Raises EngineError when the engine fails for another reason than the data, and
    QueryError when it refuses the batch and ``retry_rows`` is False (nothing is written
    then).
    """
    bad = list(bad)
    ok = 0
    if rows:
        try:
            _insert_json(backend, datasource, rows, token)
            ok = len(rows)
        except QueryError as exc:
            if not retry_rows or exc.ch_name in ("UNKNOWN_TABLE", "UNKNOWN_DATABASE"):
                raise
            refused = refused_rows(backend, datasource, rows, token=token)
            ok = len(rows) - len(refused)
            bad += [
                (f"rejected by ClickHouse: {err.detail}", json.dumps(rows[i], default=str))
                for i, err in refused
            ]
    if bad:
        table = quarantine_table(datasource)
        precise = version_tuple(backend.version()) >= MIN_VERSIONS["DateTime64"]
        if ensured is None or table not in ensured:
            backend.execute(
                quarantine_ddl(datasource, precise=precise, window=supports_tokens(backend))
            )
            if ensured is not None:
                ensured.add(table)
        now = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f")
        now = now[:23] if precise else now[:19]
        # the quarantine rows carry the time of this call: a retry's differ, its token not
        _insert_json(
            backend,
            table,
            [{"timestamp": now, "error": e, "raw": r} for e, r in bad],
            None if token is None else f"{token}/quarantine",
        )
    return ok, len(bad)


def refused_rows(
    backend: Backend, table: str, rows: list[dict], *, token: str | None = None
) -> list[tuple[int, QueryError]]:
    """Insert what the engine accepts, halving refused batches down to single rows;
    returns the refused rows as (index in ``rows``, the engine's error). The halves are
    the same on a retry, so each takes ``token`` with its place: ``token/offset+size``."""
    refused: list[tuple[int, QueryError]] = []
    _bisect(backend, table, rows, 0, refused, token)
    return refused


def _bisect(
    backend: Backend,
    table: str,
    rows: list[dict],
    offset: int,
    refused: list[tuple[int, QueryError]],
    token: str | None = None,
) -> None:
    try:
        _insert_json(
            backend, table, rows, None if token is None else f"{token}/{offset}+{len(rows)}"
        )
        return
    except QueryError as exc:
        if len(rows) == 1:
            refused.append((offset, exc))
            return
    half = len(rows) // 2
    _bisect(backend, table, rows[:half], offset, refused, token)
    _bisect(backend, table, rows[half:], offset + half, refused, token)


def _insert_json(backend: Backend, table: str, rows: list[dict], token: str | None) -> None:
    # backends (and test doubles) that predate tokens are called as before without one
    if token is None:
        backend.insert_json(table, rows)
    else:
        backend.insert_json(table, rows, token=token)


def supports_tokens(backend: Backend) -> bool:
    """Whether the backend's ClickHouse deduplicates inserts by token (22.2 or newer)."""
    return version_tuple(backend.version()) >= MIN_VERSIONS["insert deduplication tokens"]
