"""The embedded engine: chDB (ClickHouse in-process).

chDB is one engine per process: every ``chdb.connect`` in a process shares it, and a
second *path* can't be opened until all connections are closed. Only one process may
open a data folder; :func:`rtp.engine.target.open_backend` names the holder instead of
chDB's error.

Sessions on the one engine: the *writer* runs rtp's own statements (deploys,
inserts, planning reads) one at a time; *readers* (a pool, one connection per running
query, opened as needed: ~0.1 ms each) run callers' queries under
:class:`~rtp.engine.limits.Limits`, several at once. One connection per query because
chDB leaks: when a query fails after part of its output was written (a deadline, a
result limit, ``throwIf``), that part comes back as the *next* query's answer on the
same connection (measured, chDB 26.9). So a connection that saw an error is drained
(a query with a fresh token until the token comes back) before anyone reuses it. Each
query ends with rtp's ``SETTINGS readonly = 1, <limits>`` clause (see limits.py: no
setting changes after it). One statement could swallow that clause: an ``INSERT ...
FORMAT TSV`` takes what follows as data. So a caller's own text (``/v0/sql``) is first
read by the engine's parser (``EXPLAIN AST``): it must be a read statement (only an
INSERT takes inline data) and call no ``file()``. (A session-wide ``readonly = 2`` would block
writes too, but it forbids setting ``readonly = 1`` per query, and under 2 a caller's
SETTINGS clause would override the limits.) Endpoints are the project's SELECTs with
escaped values: a caller can't change their shape, so they skip the extra parse.

Reads and inserts run together (ClickHouse inserts whole parts; a read sees a part or
not, never half of one); :meth:`exclusive` (a deploy's swaps) waits for both to drain
and holds off new ones until it ends.

chDB runs ClickHouse in *local* mode, where ``file()`` is not confined to
``user_files_path`` (it reads any path, relative ones from the working directory; chDB
26.9 accepts ``?user_files_path=`` but its file functions ignore it; rtp still points
it at an empty folder of its own). So the parse above refuses a caller's statement that
calls ``file``, and ``readonly = 1`` refuses the ``file``/``url`` table functions.
"""

from __future__ import annotations

import contextlib
import json
import re
import secrets
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson

from rtp.engine import SESSION_SETTINGS, QueryError, dedup_settings, parse_clickhouse_error
from rtp.engine.limits import Limits
from rtp.engine.rwlock import RWLock
from rtp.errors import EngineError
from rtp.sql.escape import quote_string

# json.dumps(..., ensure_ascii=False, default=str) builds this encoder on every call
_ROW_ENCODER = json.JSONEncoder(ensure_ascii=False, default=str)
# EXPLAIN AST of a caller's statement: the root kinds that only read; a call of `file`
_READ_ROOTS = re.compile(
    r"(SelectWithUnionQuery|SelectIntersectExceptQuery|Explain|"
    r"Show\w*|Describe\w*|Exists\w*)\b"
)
_FILE_CALL = re.compile(r"^\s*Function file\b", re.I | re.M)
_USE = re.compile(r"\s*USE\s+`?(\w+)`?\s*$", re.I)


_open = 0  # embedded engines open in this process (chDB: one engine per process)


def open_engines() -> int:
    """How many embedded engines this process holds open (chDB opens no other data path
    beside them, and closing one in-memory connection affects the others)."""
    return _open


class EmbeddedBackend:
    name = "embedded"

    def __init__(
        self,
        path: str = ":memory:",
        database: str = "default",
        on_close: Callable[[], None] | None = None,
        user_files: Path | None = None,
    ) -> None:
        import chdb  # imported here: loading the engine costs ~0.5 s

        self.path = path
        self.database = database
        self._on_close = on_close
        self.rw = RWLock()
        self._writer_lock = threading.RLock()  # the writer session: one statement at a time
        self._version: str | None = None
        self._conn: Any = None
        self._readers: list[list[Any]] = []  # idle reader connections, as [connection, database]
        self._all_readers: list[Any] = []
        self._readers_lock = threading.Lock()
        # chDB takes settings in the path's query string; they hold for every connection
        options: dict[str, object] = {**SESSION_SETTINGS}
        if user_files is not None:
            options = {"user_files_path": user_files, **options}
        self._target = f"{path}?" + "&".join(f"{k}={v}" for k, v in options.items())
        try:
            self._conn = chdb.connect(self._target)
        except Exception:  # chDB raises plain RuntimeError here; its text helps nobody
            self._close_connections()
            raise EngineError(
                f"cannot open the embedded database at {path}",
                code="RTP501",
                hint="another rtp command in this process or another process holds it; "
                "stop it (see .rtp/owner.json) or send the command to its server",
            ) from None
        global _open
        _open += 1
        self._counted = True
        # Datasources keep an insert deduplication window (rtp.sql.ddl) for inserts
        # that carry a token; any other insert (copies, `rtp sql`, views' backfills) must
        # not be dropped for having the same rows as a recent one. chDB 25+ has the switch.
        with contextlib.suppress(QueryError):
            self.execute("SET deduplicate_insert = 'disable'")
        if database != "default":
            self.execute(f"CREATE DATABASE IF NOT EXISTS `{database}`")
            self.execute(f"USE `{database}`")

    def _run(
        self,
        sql: str,
        fmt: str,
        limits: Limits | None = None,
        settings: dict[str, Any] | None = None,
    ) -> Any:
        if limits is None:
            if settings:
                sql += "\nSETTINGS " + ", ".join(f"{k} = {v!r}" for k, v in settings.items())
            with self.rw.shared(), self._writer_lock:
                use = _USE.match(sql)
                if use:  # readers follow the writer's database
                    self.database = use.group(1)
                try:
                    return self._call(self._conn, sql, fmt)
                except QueryError:
                    self._drain_writer()
                    raise
        guarded = sql + limits.clause(settings)
        with self.rw.shared(), self._reader() as conn:
            if limits.callers_sql:
                self._check_statement(conn, sql, guarded)
            return self._call(conn, guarded, fmt)

    @contextlib.contextmanager
    def _reader(self) -> Iterator[Any]:
        import chdb

        with self._readers_lock:
            entry = self._readers.pop() if self._readers else None
        try:
            if entry is None:
                entry = [chdb.connect(self._target), "default"]
                with self._readers_lock:
                    self._all_readers.append(entry[0])
            if entry[1] != self.database:
                entry[0].query(f"USE `{self.database}`", "TabSeparated")
                entry[1] = self.database
        except Exception as exc:
            raise EngineError(
                f"the embedded engine refused a connection: {exc}", code="RTP501"
            ) from None
        try:
            yield entry[0]
        except QueryError:
            self._drain(entry)
            raise
        with self._readers_lock:
            self._readers.append(entry)

    def _drain(self, entry: list[Any]) -> None:
        """Put a reader back in the pool once it answers its own query (see module doc);
        drop it if it won't."""
        conn = entry[0]
        token = secrets.token_hex(8)
        for _ in range(3):
            with contextlib.suppress(Exception):
                if (
                    conn.query(f"SELECT '{token}'", "TabSeparatedRaw").bytes()
                    == (token + "\n").encode()
                ):
                    with self._readers_lock:
                        self._readers.append(entry)
                    return
        with self._readers_lock:
            self._all_readers.remove(conn)
        with contextlib.suppress(Exception):
            conn.close()

    def _check_statement(self, conn: Any, sql: str, guarded: str) -> None:
        """Raise QueryError (READONLY / ACCESS_DENIED) unless the engine reads ``guarded``
        as one read statement calling no ``file()``."""
        ast = self._call(conn, "EXPLAIN AST " + guarded, "TabSeparatedRaw")
        tree = ast.bytes().decode("utf-8", "replace")
        if not _READ_ROOTS.match(tree):
            raise QueryError(
                "only a read statement runs here", ch_name="READONLY", ch_code=164, sql=sql
            )
        if _FILE_CALL.search(tree):
            raise QueryError(
                "file() reads the server's files; callers can't use it",
                ch_name="ACCESS_DENIED",
                ch_code=497,
                sql=sql,
            )

    def _drain_writer(self) -> None:
        token = secrets.token_hex(8)
        for _ in range(3):
            with contextlib.suppress(Exception):
                if (
                    self._conn.query(f"SELECT '{token}'", "TabSeparatedRaw").bytes()
                    == (token + "\n").encode()
                ):
                    return

    @staticmethod
    def _call(conn: Any, sql: str, fmt: str) -> Any:
        try:
            return conn.query(sql, fmt)
        except Exception as exc:  # chdb.ChdbError and RuntimeError carry CH's text
            raise parse_clickhouse_error(str(exc), sql) from None

    def execute(self, sql: str) -> None:
        self._run(sql, "TabSeparated")

    def query(
        self, sql: str, limits: Limits | None = None, settings: dict[str, Any] | None = None
    ) -> tuple[list[tuple[str, str]], list[list[Any]]]:
        result = self._run(sql, "JSONCompact", limits, settings)
        text = result.bytes().decode("utf-8") if hasattr(result, "bytes") else str(result)
        if not text.strip():
            return [], []
        data = json.loads(text)
        return [(m["name"], m["type"]) for m in data["meta"]], data["data"]

    def query_bytes(
        self, sql: str, fmt: str, limits: Limits | None = None, settings: dict | None = None
    ) -> bytes:
        """Run a query and return the engine's own output in ClickHouse format ``fmt``
        (``JSON``, ``CSVWithNames``, ``JSONEachRow``, ``Parquet`` ...), untouched.
        With ``limits``, it runs read-only under them on the reader session; ``settings``
        are rtp's own extra settings (a limit of the same name wins)."""
        body: bytes = self._run(sql, fmt, limits, settings).bytes()
        return body

    def insert_json(
        self, table: str, rows: list[dict[str, Any]], *, token: str | None = None
    ) -> None:
        if not rows:
            return
        try:  # one array of objects (JSONEachRow reads it), ~10x faster than json
            body = orjson.dumps(rows, default=str).decode("utf-8")
        except TypeError:  # integers past 64 bits: json writes them exactly
            body = "\n".join(map(_ROW_ENCODER.encode, rows))
        self._run(
            f"INSERT INTO `{table}` SETTINGS {_settings(token)} FORMAT JSONEachRow\n{body}",
            "TabSeparated",
        )

    @contextlib.contextmanager
    def exclusive(self) -> Iterator[None]:
        with self.rw.exclusive(), self._writer_lock:
            yield

    def version(self) -> str:
        if self._version is None:
            self._version = self.query("SELECT version()")[1][0][0]
        return self._version

    def _close_connections(self) -> None:
        with self._readers_lock:
            readers, self._readers, self._all_readers = self._all_readers, [], []
        for conn in [*readers, self._conn]:
            if conn is not None:
                with contextlib.suppress(Exception):
                    conn.close()

    def close(self) -> None:
        # closing twice or after a failed open is harmless
        global _open
        with self.rw.exclusive(), self._writer_lock:
            self._close_connections()
            if getattr(self, "_counted", False):
                self._counted = False
                _open -= 1
        if self._on_close is not None:
            callback, self._on_close = self._on_close, None
            callback()


def _settings(token: str | None) -> str:
    """An insert's deduplication settings. Without a token, a unique one: datasources keep
    a deduplication window, and ClickHouse would otherwise drop an insert whose rows are
    identical to a recent one (two shoppers' identical events are two events)."""
    settings: dict[str, object] = {"deduplicate_insert": "enable"} if token is not None else {}
    settings |= dedup_settings(token if token is not None else uuid.uuid4().hex)
    return ", ".join(
        f"{k} = {quote_string(v) if isinstance(v, str) else v}" for k, v in settings.items()
    )


__all__ = ["EmbeddedBackend", "QueryError"]
