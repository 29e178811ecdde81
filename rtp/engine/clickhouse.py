"""A ClickHouse server over the native protocol (clickhouse-driver).

URL: ``clickhouse://user:password@host:9000/database`` (``clickhouses://`` for TLS).
Driver exceptions become :class:`QueryError` (the server refused a statement) or
:class:`EngineError` RTP501 (bad credentials, unreachable host, timeouts) here and
nowhere else. The driver's client is not thread-safe (one connection, one query at a
time), so each call borrows a client from a small pool: reads run together, and
:meth:`exclusive` (a deploy's swaps) waits for them and holds off new ones.

Callers' reads carry :class:`~rtp.engine.limits.Limits` as the driver's query settings
(sent beside the text, so no text can swallow them). The server applies a SELECT's own
SETTINGS after them, but under ``readonly = 1`` that clause fails (READONLY). 18.16
truncates a fractional ``max_execution_time`` (0.5 -> 0 = no limit), so it is rounded
up to whole seconds here.

Servers before 19.0 need ``allow_experimental_low_cardinality_type = 1`` to create (and
insert into) a ``LowCardinality`` column: statements and inserts carry it there.
"""

from __future__ import annotations

import datetime as dt
import decimal
import logging
import math
import queue
import re
import uuid
from contextlib import AbstractContextManager
from typing import Any
from urllib.parse import parse_qs, unquote, urlparse

from rtp.engine import (
    MIN_VERSIONS,
    SESSION_SETTINGS,
    QueryError,
    dedup_settings,
    parse_clickhouse_error,
    require,
    version_tuple,
)
from rtp.engine.formats import SUPPORTED, Statistics, format_rows
from rtp.engine.limits import Limits
from rtp.engine.rwlock import RWLock
from rtp.errors import EngineError
from rtp.sql.escape import literal, quote_string

_INLINE_DATA = re.compile(r"\s*INSERT\b.*?\b(VALUES|FORMAT\s+\w+)\s*\S", re.I | re.S)
_DEDUP_WINDOW = re.compile(r",?\s*non_replicated_deduplication_window\s*=\s*\d+(?=\s*(,|$))")
_AUTH_CODES = {192, 193, 516}  # UNKNOWN_USER, WRONG_PASSWORD, AUTHENTICATION_FAILED


# options of a target URL's query (?cluster=name): see rtp.engine.cluster
URL_OPTIONS = ("cluster", "zookeeper_path", "replica")


def parse_url(url: str) -> dict[str, Any]:
    """Connection arguments from a clickhouse:// URL, plus its :data:`URL_OPTIONS`
    (None when absent). Raises EngineError RTP501."""
    parsed = urlparse(url)
    query = parse_qs(parsed.query)
    unknown = sorted(set(query) - set(URL_OPTIONS))
    if parsed.scheme not in ("clickhouse", "clickhouses") or not parsed.hostname or unknown:
        raise EngineError(
            f"not a ClickHouse URL: {redact(url)}"
            + (f" (unknown option {', '.join(unknown)})" if unknown else ""),
            code="RTP501",
            hint="use clickhouse://user:password@host:9000/database[?cluster=name]",
        )
    return {
        **{k: query[k][-1] if k in query else None for k in URL_OPTIONS},
        "host": parsed.hostname,
        "port": parsed.port or (9440 if parsed.scheme == "clickhouses" else 9000),
        "user": unquote(parsed.username or "default"),
        "password": unquote(parsed.password or ""),
        "database": parsed.path.strip("/") or "default",
        "secure": parsed.scheme == "clickhouses",
    }


def redact(url: str) -> str:
    """The URL with its password replaced, for messages."""
    parsed = urlparse(url)
    if parsed.password:
        return url.replace(f":{parsed.password}@", ":***@", 1)
    return url


class ClickHouseBackend:
    name = "clickhouse"
    cluster: str | None = None  # a ClusterBackend's cluster
    on_cluster = ""  # " ON CLUSTER `name`" on a cluster

    def __init__(self, url: str, *, timeout: float = 30.0, connect_timeout: float = 5.0):
        from clickhouse_driver import Client  # only here: planning never sees the driver

        # the driver logs connection failures with tracebacks; rtp reports them itself
        logging.getLogger("clickhouse_driver").setLevel(logging.CRITICAL)
        args = parse_url(url)
        self.url = redact(url)
        self.database = args["database"]
        self._where = f"{args['host']}:{args['port']}"
        self.rw = RWLock()
        self._version: str | None = None
        self._idle: queue.SimpleQueue[Any] = queue.SimpleQueue()  # clients not in use

        self._session: dict[str, Any] = {}  # SESSION_SETTINGS the server knows

        def new_client(database: str = self.database) -> Any:
            return Client(
                args["host"],
                port=args["port"],
                user=args["user"],
                password=args["password"],
                database=database,
                secure=args["secure"],
                connect_timeout=connect_timeout,
                send_receive_timeout=timeout,
                sync_request_timeout=timeout,
                settings=self._session,
            )

        self._new_client = new_client
        # the database may not exist yet: connect without it, create it, then use it
        first = new_client("default")
        self._idle.put(first)
        exists = self._call(
            f"SELECT count() FROM system.databases WHERE name = {quote_string(self.database)}"
        )[0][0]
        if not exists:  # a serving user without DDL rights can't even CREATE IF NOT EXISTS
            self._call(f"CREATE DATABASE IF NOT EXISTS `{self.database}`{self.on_cluster}")
        first.connection.database = self.database
        first.disconnect()
        known = self._call(
            "SELECT name FROM system.settings WHERE name IN "
            f"({', '.join(quote_string(n) for n in SESSION_SETTINGS)})"
        )
        self._session.update({name: SESSION_SETTINGS[name] for (name,) in known})
        first.settings.update(self._session)  # made before they were known

    def _borrow(self) -> Any:
        try:
            return self._idle.get_nowait()
        except queue.Empty:
            return self._new_client()

    def _call(self, sql: str, **kwargs: Any) -> Any:
        client = self._borrow()
        with self.rw.shared():
            try:
                return self._client_call(client, sql, **kwargs)
            finally:
                self._idle.put(client)

    def _client_call(self, client: Any, sql: str, **kwargs: Any) -> Any:
        from clickhouse_driver import errors

        try:
            return client.execute(sql, **kwargs)
        except errors.ServerException as exc:
            if exc.code in _AUTH_CODES:
                raise EngineError(
                    f"ClickHouse at {self._where} refused the credentials: "
                    f"{_first_line(exc.message)}",
                    code="RTP501",
                    hint="check the user and password in the target URL",
                ) from None
            raise parse_clickhouse_error(
                f"Code: {exc.code}. {_first_line(exc.message)}", sql
            ) from None
        except (errors.NetworkError, errors.SocketTimeoutError, OSError, EOFError) as exc:
            client.disconnect()
            timed_out = "timed out" in str(exc) or isinstance(
                exc, (TimeoutError, errors.SocketTimeoutError)
            )
            what = "timed out" if timed_out else "is unreachable"
            raise EngineError(
                f"ClickHouse at {self._where} {what}: {_first_line(str(exc))}",
                code="RTP501",
                hint="check the host and port in the target URL and "
                "that the server runs; slow queries: raise the timeout",
            ) from None
        except errors.Error as exc:
            raise QueryError(_first_line(str(exc)), sql=sql) from None

    def execute(self, sql: str) -> None:
        sql = self._without_dedup_window(sql)
        if _INLINE_DATA.match(sql):
            # the driver would wait for data blocks that never come, until the timeout
            raise QueryError(
                "INSERT with inline VALUES/FORMAT data can't be sent over the "
                "native protocol; use INSERT ... SELECT or `rtp append`",
                sql=sql,
            )
        self._call(sql, settings=self.write_settings())

    def write_settings(self) -> dict[str, Any]:
        """Settings of rtp's own statements and inserts (never of callers' reads, which
        run read-only): what an old server needs to accept the project's DDL."""
        if version_tuple(self.version()) < MIN_VERSIONS["LowCardinality"]:
            return {"allow_experimental_low_cardinality_type": 1}
        return {}

    def _without_dedup_window(self, sql: str) -> str:
        """Servers older than 22.2 have no insert deduplication tokens (and before 20.12
        no ``non_replicated_deduplication_window`` setting): the window rtp adds to each
        table (rtp.sql.ddl) is left out there; idempotent inserts are refused there."""
        if (
            "non_replicated_deduplication_window" not in sql
            or version_tuple(self.version()) >= MIN_VERSIONS["insert deduplication tokens"]
        ):
            return sql
        sql = _DEDUP_WINDOW.sub("", sql)
        return re.sub(r"\n?SETTINGS\s*$", "", sql.rstrip())

    def query(
        self, sql: str, limits: Limits | None = None, settings: dict[str, Any] | None = None
    ) -> tuple[list[tuple[str, str]], list[list[Any]]]:
        """Run a query; with ``limits``, read-only under them (``settings``: rtp's own
        extra settings, sent beside the text too)."""
        columns, rows, _ = self._rows(sql, limits, settings)
        return columns, rows

    def query_bytes(
        self,
        sql: str,
        fmt: str,
        limits: Limits | None = None,
        settings: dict[str, Any] | None = None,
    ) -> bytes:
        """The query's answer in ClickHouse format ``fmt``, built from the driver's rows
        by :func:`rtp.engine.formats.format_rows` (the native protocol sends blocks, not
        format text). Raises QueryError, EngineError, ValueError (unknown format)."""
        if fmt not in SUPPORTED:  # before the query runs
            raise ValueError(f"format {fmt!r} is not one of {', '.join(SUPPORTED)}")
        columns, rows, stats = self._rows(sql, limits, settings)
        return format_rows(columns, rows, fmt, stats)

    def _rows(
        self, sql: str, limits: Limits | None, settings: dict[str, Any] | None
    ) -> tuple[list[tuple[str, str]], list[list[Any]], Statistics]:
        if limits is not None:
            settings = limits.settings(settings)
            settings["max_execution_time"] = max(1, math.ceil(limits.deadline))
        client = self._borrow()
        with self.rw.shared():
            try:
                rows, columns = self._client_call(
                    client, sql, with_column_types=True, settings=settings
                )
                last = client.last_query
                stats = Statistics(
                    float(getattr(last, "elapsed", 0.0) or 0.0),
                    int(getattr(last.progress, "rows", 0)) if last else 0,
                    int(getattr(last.progress, "bytes", 0)) if last else 0,
                )
            finally:
                self._idle.put(client)
        return ([(n, t) for n, t in columns], [[_plain(v) for v in row] for row in rows], stats)

    def insert_json(
        self, table: str, rows: list[dict[str, Any]], *, token: str | None = None
    ) -> None:
        # The driver can't send inline FORMAT data, so rows become one INSERT ... SELECT
        # with every value cast to its column's type: ClickHouse, not Python, judges each
        # value. One statement for all rows: all or none (it used to send one INSERT per
        # 200 rows, and nothing at all, silently, when the table was missing).
        if not rows:
            return
        settings: dict[str, Any] = self.write_settings()
        if token is not None:
            require(self, "insert deduplication tokens", "an idempotent insert")
        if version_tuple(self.version()) >= MIN_VERSIONS["insert deduplication tokens"]:
            # a unique token for a keyless insert: see embedded._settings
            settings.update(dedup_settings(token if token is not None else uuid.uuid4().hex))
        columns = {
            name: (ch_type, kind, expr)
            for name, ch_type, kind, expr in self.query(
                "SELECT name, type, default_kind, default_expression FROM system.columns "
                f"WHERE database = currentDatabase() AND table = {quote_string(table)}"
            )[1]
        }
        if not columns:
            raise QueryError(
                f"Table {self.database}.{table} doesn't exist",
                ch_code=60,
                ch_name="UNKNOWN_TABLE",
                sql=f"INSERT INTO `{table}`",
            )
        present = {k for row in rows for k in row}
        names = [
            c
            for c, (_, kind, _) in columns.items()
            if c in present and kind not in ("MATERIALIZED", "ALIAS")
        ]
        if not names:
            raise QueryError(f"no column of {table} in the rows", sql=f"INSERT INTO `{table}`")
        missing = {c: _default(*columns[c]) for c in names}
        selects = " UNION ALL ".join(
            "SELECT "
            + ", ".join(
                f"CAST({_value(row[c])} AS {columns[c][0]}) AS `{c}`"
                if c in row
                else f"{missing[c]} AS `{c}`"
                for c in names
            )
            for row in rows
        )
        listed = ", ".join(f"`{c}`" for c in names)
        # one statement of any size: raise the parser's limits for this query only
        settings |= {
            "max_query_size": len(selects) + 4096,
            "max_ast_elements": 50_000 + 20 * len(rows) * len(names),
            "max_expanded_ast_elements": 500_000 + 20 * len(rows) * len(names),
        }
        with self.rw.shared():
            # convert every value first, so that a refused value leaves nothing behind
            self._call(
                f"SELECT count() FROM ({selects}) WHERE NOT ignore({listed})", settings=settings
            )
            self._call(f"INSERT INTO `{table}` ({listed}) {selects}", settings=settings)

    def exclusive(self) -> AbstractContextManager[None]:
        return self.rw.exclusive()

    def version(self) -> str:
        if self._version is None:
            self._version = str(self._call("SELECT version()")[0][0])
        return self._version

    def close(self) -> None:
        while True:
            try:
                self._idle.get_nowait().disconnect()
            except queue.Empty:
                return


def _default(ch_type: str, kind: str, expr: str) -> str:
    """What a row that lacks the column stores: its DEFAULT, else the type's zero."""
    if kind == "DEFAULT" and expr:
        return f"CAST(({expr}) AS {ch_type})"
    if ch_type.startswith("Nullable("):
        return f"CAST(NULL AS {ch_type})"
    if ch_type.startswith(("Array(", "LowCardinality(", "Tuple(", "Map(")):
        return (
            f"CAST('[]' AS {ch_type})"
            if ch_type.startswith("Array(")
            else f"CAST(defaultValueOfTypeName({quote_string(ch_type)}) AS {ch_type})"
        )
    return f"assumeNotNull(CAST(NULL AS Nullable({ch_type})))"


def _value(value: object) -> str:
    if isinstance(value, dict):
        import json

        return quote_string(json.dumps(value))
    try:
        return literal(value)
    except ValueError:
        return quote_string(str(value))


def _plain(value: object) -> object:
    """Driver values as the embedded engine's JSON would give them."""
    if isinstance(value, dt.datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return float(value)
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _first_line(text: str) -> str:
    text = text.strip()
    text = text.split("Stack trace:")[0].strip()
    return " ".join(text.split())
