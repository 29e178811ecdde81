"""Server settings, validated when the app is created (not on the first request)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from rtp.engine.limits import GiB, Limits


@dataclass(frozen=True)
class ServerSettings:
    """How ``create_app`` serves a project.

    ``tokens_file`` None disables authentication (only for in-process tests and
    ``rtp dev --no-auth``); every other field has a production default.
    """

    tokens_file: Path | None = None
    query_timeout: float = 10.0  # seconds from a request's arrival to its answer -> 408
    # every caller's query (rtp.engine.limits.Limits; 0 = unlimited)
    max_memory_usage: int = 2 * GiB
    max_rows_to_read: int = 1_000_000_000
    max_bytes_to_read: int = 100 * GiB
    max_result_rows: int = 1_000_000
    max_result_bytes: int = 1 * GiB
    admin_max_memory_usage: int = 8 * GiB  # ADMIN tokens: only memory and the deadline
    # threads a /v0/sql query may use: half the cores, so endpoints keep the rest
    sql_max_threads: int = field(default_factory=lambda: max(1, (os.cpu_count() or 2) // 2))
    ready_exclusive_max: float = 30.0  # /readyz says 503 past this long a deploy's hold
    max_body_bytes: int = 10 * 1024 * 1024  # ingest request, compressed and expanded
    batch_wait: float = 0.005  # seconds a flush waits for more ingest requests
    batch_max_rows: int = 100_000  # a batch is flushed early once it holds this many rows
    max_pending_rows: int = 1_000_000  # queued rows beyond this answer 429
    rate_limit: float = 0.0  # requests per second per token; 0 = unlimited
    cors_origins: tuple[str, ...] = ("*",)
    workers: int = 4  # threads running blocking engine calls
    control_token: str | None = None  # ADMIN credential for local rtp commands (owner.json)
    docs_url: str = "docs/errors.md"  # errors link here as <docs_url>#<code>
    extra: dict = field(default_factory=dict)
    # scheduled copy pipes (rtp.server.scheduler): the engine's deadline for each run, and
    # whether this process runs them (off on all but one of several servers on one target)
    copy_timeout: float = field(
        default_factory=lambda: float(os.environ.get("RTP_COPY_TIMEOUT", "300")))
    schedules: bool = field(
        default_factory=lambda: os.environ.get("RTP_SCHEDULES", "on").lower()
        not in ("off", "0", "false", "no"))

    def __post_init__(self) -> None:
        for name in ("batch_wait", "max_memory_usage", "max_rows_to_read",
                     "max_bytes_to_read", "max_result_rows", "max_result_bytes",
                     "admin_max_memory_usage", "ready_exclusive_max"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0")
        if self.query_timeout <= 0:
            raise ValueError("query_timeout must be > 0")
        for name in ("max_body_bytes", "batch_max_rows", "max_pending_rows", "workers",
                     "sql_max_threads"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1")
        if self.rate_limit < 0:
            raise ValueError("rate_limit must be >= 0")

    def limits(self, admin: bool = False, callers_sql: bool = False) -> Limits:
        """The guards on a caller's query. ADMIN: the deadline and a (looser) memory
        limit only. ``callers_sql``: the statement is the caller's text (/v0/sql)."""
        if admin:
            return Limits(self.query_timeout, self.admin_max_memory_usage, 0, 0, 0, 0,
                          callers_sql=callers_sql)
        return Limits(self.query_timeout, self.max_memory_usage, self.max_rows_to_read,
                      self.max_bytes_to_read, self.max_result_rows, self.max_result_bytes,
                      callers_sql=callers_sql)
