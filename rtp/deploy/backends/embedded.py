"""The embedded engine: chDB (ClickHouse in-process).

A chDB connection must not run concurrent queries (parameters of one query leak into
another, see DESIGN.md), so every call holds a per-backend lock. Only one process may open
a given data folder; :func:`open_embedded` names the holder instead of chDB's error.
"""

from __future__ import annotations

import contextlib
import json
import threading

from rtp.deploy.backends import QueryError, parse_clickhouse_error
from rtp.errors import EngineError


class EmbeddedBackend:
    name = "embedded"

    def __init__(self, path: str = ":memory:", database: str = "default") -> None:
        import chdb  # imported here: loading the engine costs ~0.5 s

        self.path = path
        self.database = database
        self._lock = threading.Lock()
        try:
            self._conn = chdb.connect(path)
        except Exception as exc:  # chDB raises plain RuntimeError here
            raise EngineError(
                f"cannot open the embedded database at {path}: {exc}", code="RTP501",
                hint="another process may hold it; stop it or use its server",
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

    def version(self) -> str:
        return self.query("SELECT version()")[1][0][0]

    def close(self) -> None:
        # closing twice or after a failed open is harmless
        with self._lock, contextlib.suppress(Exception):
            self._conn.close()


__all__ = ["EmbeddedBackend", "QueryError"]
