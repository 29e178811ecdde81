"""Server settings, validated when the app is created (not on the first request)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class ServerSettings:
    """How ``create_app`` serves a project.

    ``tokens_file`` None disables authentication (only for in-process tests and
    ``rtp dev --no-auth``); every other field has a production default.
    """

    tokens_file: Path | None = None
    query_timeout: float = 10.0  # seconds; ClickHouse max_execution_time -> 408
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
        for name in ("query_timeout", "batch_wait"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0")
        for name in ("max_body_bytes", "batch_max_rows", "max_pending_rows", "workers"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1")
        if self.rate_limit < 0:
            raise ValueError("rate_limit must be >= 0")
