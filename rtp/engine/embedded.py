"""The embedded engine: chDB (ClickHouse in-process).

A chDB connection must not run concurrent queries (parameters of one query leak into
another, see DESIGN.md), so every call holds a per-backend lock. chDB is one engine per
process: every ``chdb.connect`` in a process shares it, and a second *path* can't be
opened until all connections are closed. Only one process may open a data folder;
:func:`rtp.engine.target.open_backend` names the holder instead of chDB's error.
"""

from __future__ import annotations

import contextlib
import json
import threading
import uuid
from collections.abc import Callable

import orjson

from rtp.engine import QueryError, dedup_settings, parse_clickhouse_error
from rtp.errors import EngineError
from rtp.sql.escape import quote_string

# json.dumps(..., ensure_ascii=False, default=str) builds this encoder on every call
_ROW_ENCODER = json.JSONEncoder(ensure_ascii=False, default=str)


class EmbeddedBackend:
    name = "embedded"

    def __init__(self, path: str = ":memory:", database: str = "default",
                 on_close: Callable[[], None] | None = None) -> None:
        import chdb  # imported here: loading the engine costs ~0.5 s

        self.path = path
        self.database = database
        self._on_close = on_close
        self._lock = threading.RLock()
        self._version: str | None = None
        try:
            self._conn = chdb.connect(path)
        except Exception:  # chDB raises plain RuntimeError here; its text helps nobody
            raise EngineError(
                f"cannot open the embedded database at {path}", code="RTP501",
                hint="another rtp command in this process or another process holds it; "
                "stop it (see .rtp/owner.json) or send the command to its server",
            ) from None
        if database != "default":
            self.execute(f"CREATE DATABASE IF NOT EXISTS `{database}`")
            self.execute(f"USE `{database}`")

    def _run(self, sql: str, fmt: str):
        with self._lock:
            try:
                return self._conn.query(sql, fmt)
            except Exception as exc:  # chdb.ChdbError and RuntimeError carry CH's text
                raise parse_clickhouse_error(str(exc), sql) from None

    def execute(self, sql: str) -> None:
        self._run(sql, "TabSeparated")

    def query(self, sql: str) -> tuple[list[tuple[str, str]], list[list]]:
        result = self._run(sql, "JSONCompact")
        text = result.bytes().decode("utf-8") if hasattr(result, "bytes") else str(result)
        if not text.strip():
            return [], []
        data = json.loads(text)
        return [(m["name"], m["type"]) for m in data["meta"]], data["data"]

    def query_bytes(self, sql: str, fmt: str) -> bytes:
        """Run a query and return the engine's own output in ClickHouse format ``fmt``
        (``JSON``, ``CSVWithNames``, ``JSONEachRow``, ``Parquet`` ...), untouched."""
        return self._run(sql, fmt).bytes()

    def insert_json(self, table: str, rows: list[dict], *, token: str | None = None) -> None:
        if not rows:
            return
        try:  # one array of objects (JSONEachRow reads it), ~10x faster than json
            body = orjson.dumps(rows, default=str).decode("utf-8")
        except TypeError:  # integers past 64 bits: json writes them exactly
            body = "\n".join(map(_ROW_ENCODER.encode, rows))
        self._run(f"INSERT INTO `{table}` SETTINGS {_settings(token)} FORMAT JSONEachRow\n"
                  f"{body}", "TabSeparated")

    def exclusive(self):
        return self._lock

    def version(self) -> str:
        if self._version is None:
            self._version = self.query("SELECT version()")[1][0][0]
        return self._version

    def close(self) -> None:
        # closing twice or after a failed open is harmless
        with self._lock, contextlib.suppress(Exception):
            self._conn.close()
        if self._on_close is not None:
            callback, self._on_close = self._on_close, None
            callback()


def _settings(token: str | None) -> str:
    """An insert's deduplication settings. Without a token, a unique one: datasources keep
    a deduplication window, and ClickHouse would otherwise drop an insert whose rows are
    identical to a recent one (two shoppers' identical events are two events)."""
    token = token if token is not None else uuid.uuid4().hex
    return ", ".join(f"{k} = {quote_string(v) if isinstance(v, str) else v}"
                     for k, v in dedup_settings(token).items())


__all__ = ["EmbeddedBackend", "QueryError"]
