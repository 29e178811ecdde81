"""Results reused for a while: ``cache: {ttl: <seconds>}`` on an endpoint pipe or a node.

Two kinds of entry, both in one :class:`ResultCache` per served build (``rtp serve`` makes
a new one when a deploy or reload swaps the project in, so nothing outlives the SQL that
made it):

* **An endpoint's answer** (pipe-level ``cache``): the response bytes, one entry per
  format and distinct parameter set (after coercion, token ``fixed_params`` included),
  for ``ttl`` seconds. A ``q=`` request is never answered from it.
* **A node's result** (node-level ``cache``, only on a node that reads no request
  parameter, which ``rtp check`` enforces): computed once per ``ttl`` for every caller and
  substituted, as a literal, for the node's SQL wherever a composed statement reads it
  (:func:`node_literal`). The literal is one row of typed arrays, cast from the engine's
  own text for each value, and unnested by ``ARRAY JOIN``::

      SELECT _rtp_c1 AS `product_id`, _rtp_c2 AS `score` FROM (SELECT
        CAST('[''p1'',''p2'']' AS Array(String)) AS _rtp_c1,
        CAST('[3.5,2]' AS Array(Float64)) AS _rtp_c2) ARRAY JOIN _rtp_c1, _rtp_c2

  so the reading nodes get the same columns, types, values and order as the node's own
  SQL would give, with no engine state: the statement still runs read-only (a table
  function such as ``format()``, or a temporary table, is refused under ``readonly = 1``
  and on a least-privilege user) and works on ClickHouse 18.16 as on chDB. Parsing the
  literal costs about 1 µs a value (chDB 26.9: 50 rows of 3 columns 1.5 ms in all, 500 rows
  1.6 ms, 4,000 rows 5 ms), so a result whose literal passes :data:`MAX_LITERAL_BYTES`
  is not substituted: the node runs as written (``too_large`` in the metrics).

Entries expire ``ttl`` seconds after they were computed. One caller computes a missing
entry while the others asking for it wait for that result (no stampede when a popular
entry expires). Entries are bounded in total by :data:`MAX_BYTES` (least recently used go
first). Errors are never cached.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any

from rtp.sql.escape import identifier, quote_string

MAX_BYTES = 256 * 1024 * 1024  # all entries of one cache together
MAX_LITERAL_BYTES = 64 * 1024  # a node result substituted as a literal, at most

# label -> "hit" | "miss" | "too_large"; label is (pipe, node), node "" for a whole answer
Record = Callable[[str, str, str], None]


@dataclass
class _Entry:
    value: Any  # bytes (an answer), str (a node's literal) or None (too large)
    size: int
    expires: float  # time.monotonic()


class ResultCache:
    """Cached answers and node results of one build; see the module doc."""

    def __init__(
        self, record: Record | None = None, max_bytes: int = MAX_BYTES, build: object = None
    ) -> None:
        # the compiled project whose results these are: a request that raced a reload
        # and holds the other one doesn't use this cache (run_pipe checks)
        self.build = build
        self._record = record
        self._max_bytes = max_bytes
        self._entries: OrderedDict[Hashable, _Entry] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self._flights: dict[Hashable, threading.Lock] = {}

    def get(
        self,
        key: Hashable,
        ttl: float,
        compute: Callable[[], Any],
        label: tuple[str, str],
        size: Callable[[Any], int] = len,
    ) -> Any:
        """The value under ``key``, computed by ``compute()`` when missing or older than
        ``ttl`` seconds. Raises whatever ``compute`` raises (and caches nothing)."""
        value = self._fresh(key)
        if value is not _MISSING:
            self._note(label, value, hit=True)
            return value
        with self._lock:
            flight = self._flights.setdefault(key, threading.Lock())
        with flight:
            value = self._fresh(key)  # computed by the caller we waited for
            if value is not _MISSING:
                self._note(label, value, hit=True)
                return value
            try:
                value = compute()
            finally:
                with self._lock:
                    self._flights.pop(key, None)
            self._store(key, _Entry(value, size(value) if value is not None else 0, 0.0), ttl)
            self._note(label, value, hit=False)
            return value

    def hit(self, key: Hashable, label: tuple[str, str]) -> Any:
        """The fresh value under ``key`` (a hit, counted), or None (nothing counted: the
        caller goes on to :meth:`get`)."""
        value = self._fresh(key)
        if value is _MISSING or value is None:
            return None
        self._note(label, value, hit=True)
        return value

    def _fresh(self, key: Hashable) -> Any:
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return _MISSING
            if entry.expires <= time.monotonic():
                self._drop(key)
                return _MISSING
            self._entries.move_to_end(key)
            return entry.value

    def _store(self, key: Hashable, entry: _Entry, ttl: float) -> None:
        entry.expires = time.monotonic() + ttl
        with self._lock:
            if key in self._entries:
                self._drop(key)
            if entry.size > self._max_bytes:
                return
            self._entries[key] = entry
            self._bytes += entry.size
            while self._bytes > self._max_bytes:
                self._drop(next(iter(self._entries)))

    def _drop(self, key: Hashable) -> None:
        self._bytes -= self._entries.pop(key).size

    def _note(self, label: tuple[str, str], value: Any, *, hit: bool) -> None:
        if self._record is not None:
            result = "too_large" if value is None else "hit" if hit else "miss"
            self._record(label[0], label[1], result)


_MISSING = object()


def answer_key(pipe: str, fmt: str, values: dict) -> tuple:
    """The key of an endpoint's answer: its format and coerced parameter values."""
    return ("answer", pipe, fmt, tuple(sorted((k, _frozen(v)) for k, v in values.items())))


def node_key(pipe: str, node: str) -> tuple:
    return ("node", pipe, node)


def _frozen(value: Any) -> Hashable:
    if isinstance(value, list | tuple):
        return tuple(_frozen(v) for v in value)
    if isinstance(value, dict):
        return tuple(sorted((k, _frozen(v)) for k, v in value.items()))
    return (type(value).__name__, value)


def node_literal(
    query: Callable[[str], tuple[list[tuple[str, str]], list[list[Any]]]], sql: str
) -> str | None:
    """A statement giving the rows of ``sql`` (a node's composed SELECT) from literals,
    as the module doc describes; None when its text would pass
    :data:`MAX_LITERAL_BYTES` or its column names repeat (no literal can name both).

    ``query`` runs a statement and returns (columns as (name, type), rows). Raises what
    ``query`` raises."""
    columns, _ = query(f"SELECT * FROM (\n{sql}\n) LIMIT 0")
    names = [name for name, _ in columns]
    if not names or len(set(names)) != len(names):
        return None
    # toString([x]) is x as an array element is written (strings and dates quoted,
    # escaped): the text CAST(... AS Array(T)) reads back exactly
    texts = ", ".join(f"toString([{identifier(name)}])" for name in names)
    _, rows = query(f"SELECT {texts} FROM (\n{sql}\n)")
    size = sum(len(cell) for row in rows for cell in row)
    if size > MAX_LITERAL_BYTES:
        return None
    arrays = []
    for i, (_, ctype) in enumerate(columns):
        text = "[" + ",".join(row[i][1:-1] for row in rows) + "]"
        arrays.append(f"CAST({quote_string(text)} AS Array({ctype})) AS _rtp_c{i + 1}")
    outer = ", ".join(f"_rtp_c{i + 1} AS {identifier(name)}" for i, name in enumerate(names))
    unnest = ", ".join(f"_rtp_c{i + 1}" for i in range(len(names)))
    return f"SELECT {outer} FROM (SELECT {', '.join(arrays)}) ARRAY JOIN {unnest}"
