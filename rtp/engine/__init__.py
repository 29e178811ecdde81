"""Backends: the one interface through which rtp talks to a ClickHouse engine.

``embedded`` runs chDB in-process; ``clickhouse`` talks to a server over the native
protocol. Each translates its driver's exceptions into :class:`QueryError` (a
ClickHouse error, with its code and name) or :class:`EngineError` (the engine can't be
reached) at this boundary and nowhere else.
"""

from __future__ import annotations

import re
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any, Protocol

from rtp.errors import EngineError

if TYPE_CHECKING:
    from rtp.engine.limits import Limits

_CH_ERROR = re.compile(
    r"Code:\s*(\d+)\.\s*(?:DB::Exception:\s*)?(.*?)(?:\s*\(([A-Z_0-9]+)\))?"
    r"(?:\s*\(version [^)]*\))?\s*$",
    re.S,
)

# Settings every session of rtp's has, where the engine knows them. A JSON column's paths
# are Dynamic, which ClickHouse (24.11+) refuses as GROUP BY / ORDER BY / JOIN keys unless
# these are set; Tinybird runs such projects (tinynest groups and joins on JSON paths).
# The embedded engine gets them at start (rtp.engine.embedded); a server's sessions only
# where its system.settings lists them (18.16 has neither them nor the JSON type).
SESSION_SETTINGS: dict[str, int] = {
    "allow_suspicious_types_in_group_by": 1,
    "allow_suspicious_types_in_order_by": 1,
    # JOIN ... ON a.id = b.event.id ("added for compatibility", says ClickHouse)
    "allow_dynamic_type_in_join_keys": 1,
}

# feature -> the first ClickHouse release that has it. rtp's target is modern ClickHouse
# (and chDB); on an older server a project using one of these fails with RTP502.
MIN_VERSIONS: dict[str, tuple[int, int]] = {
    "ALTER TABLE ... MODIFY TTL": (19, 6),
    "table TTL": (19, 6),
    "ALTER TABLE ... MODIFY SETTING": (19, 14),
    "data skipping indexes": (19, 6),
    "DateTime64": (20, 1),
    "the JSON type": (24, 8),  # experimental until 25.3 (allow_experimental_json_type)
    "window functions": (21, 3),
    # WITH a AS (SELECT ...), b AS (SELECT ... FROM a): 20.10 has table CTEs but refuses
    # one that reads an earlier one (Missing columns); before 21.1 pipes compose as
    # nested subqueries
    "table CTEs": (21, 1),
    # LowCardinality without allow_experimental_low_cardinality_type
    "LowCardinality": (19, 0),
    # insert_deduplication_token (22.2); non_replicated_deduplication_window is 20.x
    "insert deduplication tokens": (22, 2),
}


class QueryError(EngineError):
    """ClickHouse refused a statement. ``ch_code``/``ch_name`` are ClickHouse's own
    (e.g. 47 / UNKNOWN_IDENTIFIER); ``detail`` is its message without the prefix."""

    def __init__(self, detail: str, *, ch_code: int = 0, ch_name: str = "", sql: str = ""):
        super().__init__(
            f"ClickHouse: {detail}" + (f" ({ch_name})" if ch_name else ""), code="RTP500"
        )
        self.detail = detail
        # (change, step) of the deploy step that failed, set by rtp.deploy.journal.run
        self.step: tuple[int, int] | None = None
        self.ch_code = ch_code
        self.ch_name = ch_name
        self.sql = sql


def parse_clickhouse_error(text: str, sql: str = "") -> QueryError:
    """A QueryError from ClickHouse's ``Code: N. DB::Exception: ... (NAME)`` text."""
    text = text.strip()
    m = _CH_ERROR.search(text)
    if not m:
        return QueryError(text, sql=sql)
    detail = m.group(2).strip().rstrip(".")
    detail = re.sub(r"\s*\(version [^)]*\)$", "", detail)
    return QueryError(detail, ch_code=int(m.group(1)), ch_name=m.group(3) or "", sql=sql)


def dedup_settings(token: str) -> dict[str, object]:
    """Query settings of an insert that a retry with the same ``token`` must not double:
    dropped in the table and in every materialized view's target (each keeps a window
    of recent tokens, see rtp.sql.ddl.DEDUP_WINDOW). ClickHouse 22.2 or newer."""
    return {
        "insert_deduplicate": 1,
        "insert_deduplication_token": token,
        "deduplicate_blocks_in_dependent_materialized_views": 1,
    }


def version_tuple(version: str) -> tuple[int, int]:
    """``'18.16.1'`` -> ``(18, 16)``."""
    parts = [int(p) for p in re.findall(r"\d+", version)[:2]]
    return (parts + [0, 0])[0], (parts + [0, 0])[1]


def has(backend: Backend, feature: str) -> bool:
    """Whether the backend's ClickHouse is new enough for ``feature`` (MIN_VERSIONS)."""
    return version_tuple(backend.version()) >= MIN_VERSIONS[feature]


def nested(backend: Backend) -> bool:
    """Whether pipes must be composed as nested subqueries on this backend (no table
    CTEs): the ``nested`` of :meth:`rtp.sql.compose.CompiledProject.compose`."""
    return not has(backend, "table CTEs")


def require(backend: Backend, feature: str, where: str = "") -> None:
    """Raise EngineError RTP502 when the backend's ClickHouse is older than ``feature``
    needs (see MIN_VERSIONS)."""
    need = MIN_VERSIONS[feature]
    have = backend.version()
    if version_tuple(have) < need:
        raise EngineError(
            f"{where + ' uses ' if where else ''}{feature}, which needs ClickHouse "
            f"{need[0]}.{need[1]} or newer; the target runs {have}",
            code="RTP502",
            hint="upgrade the server (rtp targets modern ClickHouse) or "
            "deploy to the embedded engine",
        )


class Backend(Protocol):
    """What planning, checking, testing and serving need from an engine. Both
    :class:`~rtp.engine.embedded.EmbeddedBackend` and
    :class:`~rtp.engine.clickhouse.ClickHouseBackend` implement all of it, and
    tests/test_backend_contract.py runs one suite against each."""

    name: str  # "embedded" or "clickhouse"
    database: str

    def execute(self, sql: str) -> None:
        """Run a statement that returns nothing. Raises QueryError or EngineError."""

    def query(
        self, sql: str, limits: Limits | None = None, settings: dict[str, Any] | None = None
    ) -> tuple[list[tuple[str, str]], list[list[Any]]]:
        """Run a query; returns (columns as (name, type), rows as lists). With
        ``limits``, it runs read-only under them; ``settings`` are rtp's own extra
        settings (a limit of the same name wins). Raises QueryError or EngineError."""

    def query_bytes(
        self,
        sql: str,
        fmt: str,
        limits: Limits | None = None,
        settings: dict[str, Any] | None = None,
    ) -> bytes:
        """Run a query and return its answer in ClickHouse output format ``fmt``
        (``JSON`` with meta/data/rows/statistics, ``CSVWithNames``, ``JSONEachRow``,
        ``Parquet``, ``TabSeparated``); ``limits`` and ``settings`` as in :meth:`query`.
        Raises QueryError or EngineError."""

    def insert_json(
        self, table: str, rows: list[dict[str, Any]], *, token: str | None = None
    ) -> None:
        """Insert rows (column name -> JSON value) into ``table`` as one INSERT: all or
        none. ``token``: an insert deduplication token; a second insert with the same
        token is dropped, in the table and in its materialized views' targets (tables
        created with ``non_replicated_deduplication_window``). Raises QueryError when
        ClickHouse refuses a value or the table is missing, EngineError RTP502 for a
        token on a ClickHouse older than 22.2."""

    def exclusive(self) -> AbstractContextManager[None]:
        """Hold this backend for a sequence of statements: no other statement through
        this backend runs until the block ends (deploy swaps use it)."""

    def version(self) -> str:
        """The engine's ClickHouse version, e.g. '26.9.1.1'."""

    def close(self) -> None:
        """Release the engine."""
