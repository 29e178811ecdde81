"""Backends: the one interface through which rtp talks to a ClickHouse engine.

``embedded`` runs chDB in-process; ``clickhouse`` talks to a server over the native
protocol. Each translates its driver's exceptions into :class:`QueryError` (a
ClickHouse error, with its code and name) or :class:`EngineError` (the engine can't be
reached) at this boundary and nowhere else.
"""

from __future__ import annotations

import re
from typing import Protocol

from rtp.errors import EngineError

_CH_ERROR = re.compile(r"Code:\s*(\d+)\.\s*(?:DB::Exception:\s*)?(.*?)(?:\s*\(([A-Z_0-9]+)\))?"
                       r"(?:\s*\(version [^)]*\))?\s*$", re.S)


class QueryError(EngineError):
    """ClickHouse refused a statement. ``ch_code``/``ch_name`` are ClickHouse's own
    (e.g. 47 / UNKNOWN_IDENTIFIER); ``detail`` is its message without the prefix."""

    def __init__(self, detail: str, *, ch_code: int = 0, ch_name: str = "", sql: str = ""):
        super().__init__(f"ClickHouse: {detail}" + (f" ({ch_name})" if ch_name else ""),
                         code="RTP500")
        self.detail = detail
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


class Backend(Protocol):
    """What planning, checking, testing and serving need from an engine."""

    name: str  # "embedded" or "clickhouse"
    database: str

    def execute(self, sql: str) -> None:
        """Run a statement that returns nothing. Raises QueryError or EngineError."""

    def query(self, sql: str) -> tuple[list[tuple[str, str]], list[list]]:
        """Run a query; returns (columns as (name, type), rows as lists)."""

    def version(self) -> str:
        """The engine's ClickHouse version, e.g. '26.9.1.1'."""

    def close(self) -> None:
        """Release the engine."""
