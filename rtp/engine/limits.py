"""The guards rtp sets on every query a caller causes: read-only, a deadline, memory and
row limits. One typed place; the backends apply them at the execution call, where the
caller's text can no longer change them.

How ClickHouse applies them (measured on chDB 26.9 and the 18.16 server):

- A SELECT's own ``SETTINGS`` clause is applied *after* settings sent with the query
  (the driver's ``settings=`` or a second ``SETTINGS`` clause appended to the text), so
  under ``readonly = 2`` a caller's ``SETTINGS max_execution_time = 999`` would win.
- Under ``readonly = 1`` no setting can change after ours: the caller's clause fails with
  READONLY (code 164), a subquery's is ignored. Our own clause may still set the limits
  together with ``readonly = 1`` (one clause applies at once; a name twice fails).
- ``readonly = 1`` refuses INSERT, CREATE, ALTER, DROP, SET and the ``file``/``url``
  table functions; it does not stop the scalar ``file()`` function (see
  :mod:`rtp.engine.embedded`).
- ``max_execution_time`` cancels the work: ``SELECT count() FROM numbers(1e11)`` with 1 s
  stops after 1.00 s with TIMEOUT_EXCEEDED (159) and the threads go idle.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

GiB = 1024**3
MiB = 1024**2

# ClickHouse error codes (18.16 sends no names) -> the limit a query hit
TIMEOUT_EXCEEDED = 159
LIMIT_ERRORS = {
    159: "its deadline",
    241: "its memory limit (max_memory_usage)",
    158: "its limit on rows read (max_rows_to_read)",
    307: "its limit on bytes read (max_bytes_to_read)",
    396: "its limit on the result's rows or bytes (max_result_rows, max_result_bytes)",
}


@dataclass(frozen=True)
class Limits:
    """Per-query guards. 0 means unlimited (ClickHouse's own convention), except
    ``deadline``, which is always set."""

    deadline: float = 10.0  # seconds: max_execution_time, counted from the request's start
    max_memory_usage: int = 2 * GiB  # bytes one query may allocate
    max_rows_to_read: int = 1_000_000_000  # rows read from tables, all of them
    max_bytes_to_read: int = 100 * GiB  # uncompressed bytes read from tables
    max_result_rows: int = 1_000_000  # rows in the answer
    max_result_bytes: int = 1 * GiB  # uncompressed bytes in the answer
    # threads one query may use (0: ClickHouse's default, all cores); /v0/sql gets half,
    # so endpoints keep a core while an analyst's scan runs
    max_threads: int = 0
    # the statement is the caller's own text (/v0/sql): the engine's parser checks it
    # for file() before it runs (chDB does not confine file(), see embedded.py)
    callers_sql: bool = False

    def __post_init__(self) -> None:
        if self.deadline <= 0:
            raise ValueError("deadline must be > 0")
        for name in (
            "max_memory_usage",
            "max_rows_to_read",
            "max_bytes_to_read",
            "max_result_rows",
            "max_result_bytes",
        ):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0")

    def within(self, seconds: float) -> Limits:
        """These limits with the deadline cut to ``seconds`` (what is left of it)."""
        return replace(self, deadline=min(self.deadline, seconds))

    def settings(self, extra: dict[str, Any] | None = None) -> dict[str, Any]:
        """ClickHouse settings, ``readonly = 1`` first. ``extra`` (rtp's own, e.g.
        max_query_size) are added; a limit always wins over an extra of the same name."""
        ours = {
            "readonly": 1,
            "max_execution_time": round(self.deadline, 3),
            "timeout_overflow_mode": "throw",
            "max_memory_usage": self.max_memory_usage,
            "max_rows_to_read": self.max_rows_to_read,
            "max_bytes_to_read": self.max_bytes_to_read,
            "read_overflow_mode": "throw",
            "max_result_rows": self.max_result_rows,
            "max_result_bytes": self.max_result_bytes,
            "result_overflow_mode": "throw",
        }
        if self.max_threads:
            ours["max_threads"] = self.max_threads
        return {**(extra or {}), **ours}

    def clause(self, extra: dict[str, Any] | None = None) -> str:
        """The settings as a trailing ``SETTINGS`` clause, on its own line (a caller's
        trailing ``-- comment`` can't swallow it)."""
        return "\nSETTINGS " + ", ".join(
            f"{name} = {_literal(value)}" for name, value in self.settings(extra).items()
        )


def _literal(value: object) -> str:
    if isinstance(value, str):
        if not value.replace("_", "").isalnum():
            raise ValueError(f"not a settings word: {value!r}")
        return f"'{value}'"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"not a settings value: {value!r}")
    return repr(value)


__all__ = ["GiB", "LIMIT_ERRORS", "Limits", "MiB", "TIMEOUT_EXCEEDED"]
