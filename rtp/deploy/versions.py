"""Deploy versions: which version of the project is live, staged or kept, in the target.

A version is the project as one ``rtp deploy --stage`` saw it. Its objects that differ
from the live version's (the *changed set*: see :func:`rtp.deploy.stage.changed_set`)
live next to the live ones under suffixed names; everything else is shared::

    live        events            user_stats            user_stats_mv
    staging     events__rtp_stage user_stats__rtp_stage user_stats_mv__rtp_stage
    previous    events__rtp_v1    ...                   ...

The live version always has the plain names, so endpoints, ingestion and every other
client of the target read and write it as before; promote and rollback swap names
(``RENAME TABLE``, under the backend's exclusive hold). ``_rtp_versions`` is an
append-only log, one row per status change; the newest row per version wins.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from rtp.deploy.state import own_ddl
from rtp.sql.escape import quote_string

if TYPE_CHECKING:
    from rtp.engine import Backend

VERSIONS_TABLE = "_rtp_versions"
VERSIONS_COLUMNS = (
    "version UInt32, status String, base UInt32, manifest String, created_at DateTime, at UInt64"
)
STAGE = "__rtp_stage"  # suffix of a staged version's objects
LIVE, STAGING, PREVIOUS = "live", "staging", "previous"
DISCARDED, RETIRED, BUILDING = "discarded", "retired", "building"


def suffix(version: Version) -> str:
    """Where ``version``'s changed objects are: plain names when live."""
    if version.status == LIVE:
        return ""
    return STAGE if version.status in (STAGING, BUILDING) else f"__rtp_v{version.number}"


def forwarder(table: str, version_suffix: str) -> str:
    """The materialized view that copies rows ingested into live ``table`` to a kept
    version's copy of it (``events__rtp_fwd_stage``)."""
    return f"{table}__rtp_fwd{version_suffix.replace('__rtp_', '_')}"


@dataclass
class Version:
    """One row of ``rtp deploy ls``; ``manifest`` is what promote/rollback need:
    ``changed`` (names), ``tables``/``views`` (records and DDL of its changed objects),
    ``forwarded`` (changed datasources fed from the live table), ``files``."""

    number: int
    status: str
    base: int  # the live version it was staged on
    created_at: str
    manifest: dict[str, Any] = field(default_factory=dict)

    @property
    def changed(self) -> list[str]:
        return list(self.manifest.get("changed", []))

    def physical(self) -> dict[str, str]:
        """Project name -> table name, for each changed table and view it has."""
        end = suffix(self)
        names = [*self.manifest.get("tables", {}), *self.manifest.get("views", {})]
        return {n: n + end for n in names if n in self.changed}


def has_versions(backend: Backend) -> bool:
    return bool(
        backend.query(
            "SELECT 1 FROM system.tables WHERE database = currentDatabase() "
            f"AND name = {quote_string(VERSIONS_TABLE)}"
        )[1]
    )


def read_versions(backend: Backend) -> list[Version]:
    """Every version of the target, oldest first (status as of its newest row)."""
    if not has_versions(backend):
        return []
    _, rows = backend.query(
        "SELECT version, argMax(status, at), argMax(base, at), toString(min(created_at)), "
        f"argMaxIf(manifest, at, manifest != '') FROM `{VERSIONS_TABLE}` "
        "GROUP BY version ORDER BY version"
    )
    return [Version(int(r[0]), r[1], int(r[2]), r[3], json.loads(r[4] or "{}")) for r in rows]


def find(versions: list[Version], status: str) -> Version | None:
    """The newest version with ``status``."""
    return next((v for v in reversed(versions) if v.status == status), None)


def write(
    backend: Backend, number: int, status: str, base: int = 0, manifest: dict | None = None
) -> None:
    """Record a version's status now (with its manifest: the first row of a version)."""
    backend.execute(own_ddl(backend, VERSIONS_TABLE, VERSIONS_COLUMNS, "(version, at)"))
    backend.insert_json(VERSIONS_TABLE, [_row(number, status, base, manifest)])


def status_step(number: int, status: str, base: int = 0) -> str:
    """The statement that records a status as a journaled deploy step (run again after a
    crash it adds the same status once more: the newest row wins)."""
    row = _row(number, status, base, None)
    return (
        f"INSERT INTO `{VERSIONS_TABLE}` (version, status, base, manifest, created_at, at) "
        f"SELECT {number}, {quote_string(status)}, {base}, '', now(), {row['at']}"
    )


def _row(number: int, status: str, base: int, manifest: dict | None) -> dict:
    return {
        "version": number,
        "status": status,
        "base": base,
        "manifest": json.dumps(manifest, sort_keys=True) if manifest else "",
        "created_at": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime()),
        "at": time.time_ns(),
    }
