"""Server settings, validated when the app is created (not on the first request).

Where each setting comes from, one rule for ``rtp serve`` and ``rtp dev``
(:func:`server_settings`): a command-line flag, else the environment variable
``RTP_SERVER_<NAME>``, else ``server:`` in ``rtp.yaml``, else the default here. The names
are :class:`ServerSettings`' fields; docs/serve.md#settings has the table.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path

from rtp.engine.limits import GiB, Limits
from rtp.errors import Location, ProjectError


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
    threads: int = 4  # threads running blocking engine calls, per process
    # processes sharing the port (rtp serve --workers; server targets only): worker 0
    # runs the scheduled copies and Kafka consumers, the others only answer requests
    workers: int = 1
    consumers: bool = True  # this process runs the project's Kafka consumers
    control_token: str | None = None  # ADMIN credential for local rtp commands (owner.json)
    docs_url: str = "docs/errors.md"  # errors link here as <docs_url>#<code>
    extra: dict = field(default_factory=dict)
    # scheduled copy pipes (rtp.server.scheduler): the engine's deadline for each run, and
    # whether this process runs them (off on all but one of several servers on one target)
    copy_timeout: float = 300.0
    schedules: bool = True

    def __post_init__(self) -> None:
        for name in (
            "batch_wait",
            "max_memory_usage",
            "max_rows_to_read",
            "max_bytes_to_read",
            "max_result_rows",
            "max_result_bytes",
            "admin_max_memory_usage",
            "ready_exclusive_max",
        ):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0")
        if self.query_timeout <= 0:
            raise ValueError("query_timeout must be > 0")
        for name in (
            "max_body_bytes",
            "batch_max_rows",
            "max_pending_rows",
            "threads",
            "workers",
            "sql_max_threads",
        ):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1")
        if self.rate_limit < 0:
            raise ValueError("rate_limit must be >= 0")

    def limits(self, admin: bool = False, callers_sql: bool = False) -> Limits:
        """The guards on a caller's query. ADMIN: the deadline and a (looser) memory
        limit only. ``callers_sql``: the statement is the caller's text (/v0/sql)."""
        if admin:
            return Limits(
                self.query_timeout, self.admin_max_memory_usage, 0, 0, 0, 0, callers_sql=callers_sql
            )
        return Limits(
            self.query_timeout,
            self.max_memory_usage,
            self.max_rows_to_read,
            self.max_bytes_to_read,
            self.max_result_rows,
            self.max_result_bytes,
            callers_sql=callers_sql,
        )

    def public(self) -> dict:
        """The settings a person may see (``rtp serve --print-settings``): every field
        but the tokens file, the control token, ``consumers`` (set per worker) and
        ``extra``."""
        out = asdict(self)
        for secret in ("tokens_file", "control_token", "consumers", "extra"):
            out.pop(secret)
        out["cors_origins"] = list(self.cors_origins)
        return out


ENV_PREFIX = "RTP_SERVER_"
# older names, still read (deprecated): RTP_SERVER_<NAME> wins when both are set
DEPRECATED_ENV = {"RTP_COPY_TIMEOUT": "copy_timeout", "RTP_SCHEDULES": "schedules"}
# the flag of each setting on `rtp serve` (rtp dev has some of them); None: no flag
FLAGS: dict[str, str | None] = {
    "query_timeout": "--timeout",
    "max_memory_usage": "--max-memory",
    "max_rows_to_read": "--max-rows-to-read",
    "max_bytes_to_read": "--max-bytes-to-read",
    "max_result_rows": "--max-result-rows",
    "max_result_bytes": "--max-result-bytes",
    "admin_max_memory_usage": "--admin-max-memory",
    "sql_max_threads": "--sql-max-threads",
    "ready_exclusive_max": "--ready-exclusive-max",
    "max_body_bytes": "--max-body-bytes",
    "batch_wait": "--batch-wait",
    "batch_max_rows": "--batch-max-rows",
    "max_pending_rows": "--max-pending-rows",
    "rate_limit": "--rate-limit",
    "cors_origins": "--cors",
    "threads": "--threads",
    "workers": "--workers",
    "copy_timeout": "--copy-timeout",
    "schedules": "--schedules/--no-schedules",
    "docs_url": None,
}


def env_name(name: str) -> str:
    return ENV_PREFIX + name.upper()


def server_settings(
    project,
    env: Mapping[str, str] | None = None,
    flags: Mapping[str, object] | None = None,
    **fixed,
) -> ServerSettings:
    """The settings ``rtp serve``/``rtp dev`` run with. Each setting, by precedence: a
    flag given (``flags``: setting name -> value, None or empty = not given), else
    ``RTP_SERVER_<NAME>`` in ``env`` (then a deprecated alias, :data:`DEPRECATED_ENV`),
    else ``server:`` in the project's ``rtp.yaml``, else :class:`ServerSettings`' default.
    ``admin_max_memory_usage`` set nowhere is 4 x ``max_memory_usage``. ``fixed``: fields
    no user sets (``tokens_file``, ``control_token``).

    Raises ProjectError: the first problem of ``server:`` in rtp.yaml at its line and
    column (RTP102/RTP107), RTP107 naming the variable or flag whose value can't be read,
    RTP102 for an ``RTP_SERVER_*`` variable that names no setting.
    """
    from rtp.project.load import server_errors

    settings = project.settings if project is not None else None
    if settings is not None:
        errors = server_errors(settings)
        if errors:
            raise errors[0]
    values = dict(settings.server) if settings is not None else {}
    env = {} if env is None else env
    for var in env:
        if var.startswith(ENV_PREFIX) and var[len(ENV_PREFIX) :].lower() not in FLAGS:
            names = [env_name(n) for n in FLAGS]
            close = difflib.get_close_matches(var, names, n=1)
            raise ProjectError(
                f"unknown server setting {var}",
                code="RTP102",
                location=Location(var),
                hint=f"did you mean {close[0]}?" if close else "see docs/serve.md#settings",
            )
    for old, name in DEPRECATED_ENV.items():
        if old in env and env_name(name) not in env:
            values[name] = _read(name, env[old], old)
    for name in FLAGS:
        if env_name(name) in env:
            values[name] = _read(name, env[env_name(name)], env_name(name))
    for name, value in (flags or {}).items():
        if value is not None and value != [] and value != ():
            values[name] = _read(name, value, (FLAGS[name] or name).split("/")[0])
    if "admin_max_memory_usage" not in values and "max_memory_usage" in values:
        values["admin_max_memory_usage"] = 4 * values["max_memory_usage"]
    return ServerSettings(**values, **fixed)


def _read(name: str, value, source: str):
    """``value`` of setting ``name`` read the way rtp.yaml's ``server:`` reads it."""
    from pydantic import ValidationError

    from rtp.project.schema import ServerSection

    if isinstance(value, list | tuple) and name != "cors_origins":
        value = value[-1]
    try:
        return getattr(ServerSection.model_validate({name: value}), name)
    except ValidationError as exc:
        err = exc.errors(include_url=False)[0]
        raise ProjectError(
            f"{name} {err['msg']}",
            code="RTP107",
            location=Location(source),
            hint="server settings: docs/serve.md#settings",
        ) from None
