"""Is the target fit to ingest into? A datasource whose materialized views the project
declares but the engine lacks (e.g. a deploy killed between dropping and recreating
them) must not take rows: the views would never see them.

``missing_views`` reads ``system.tables`` once; the server calls it at start, on every
reload and after every deploy, not per request. ``refuse_ingest`` is the check at the
door of ``POST /v0/events``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rtp.deploy.journal import find_unfinished
from rtp.errors import EngineError, Problems
from rtp.project.model import Project

if TYPE_CHECKING:
    from rtp.engine import Backend
    from rtp.sql.compose import CompiledProject


def missing_views(
    project: Project, backend: Backend, compiled: CompiledProject | None = None
) -> dict[str, list[str]]:
    """Datasource -> the materialized views reading it that the engine lacks (only
    datasources with some missing). Raises EngineError when the engine can't be read."""
    from rtp.deploy.plan import _tables_read  # the plan's own idea of what a view reads
    from rtp.sql.compose import compile_project

    views = [p.name for p in project.pipes.values() if p.type == "materialized"]
    if not views:
        return {}
    compiled = compiled or compile_project(project, Problems())
    _, rows = backend.query(
        "SELECT name FROM system.tables WHERE database = "
        "currentDatabase() AND engine = 'MaterializedView'"
    )
    live = {r[0] for r in rows}
    missing: dict[str, list[str]] = {}
    for view in sorted(views):
        if view in live or view in compiled.broken:
            continue
        for table in sorted(_tables_read(compiled, view)):
            missing.setdefault(table, []).append(view)
    return missing


def describe_missing(backend: Backend, missing: dict[str, list[str]]) -> str:
    """The hint for RTP508: whether an interrupted deploy explains it."""
    try:
        unfinished = find_unfinished(backend)
    except EngineError:
        unfinished = None
    if unfinished is not None:
        return (
            f"deploy {unfinished.deploy_id} was interrupted; run `rtp deploy` to "
            "finish it, then send the rows again"
        )
    return "run `rtp deploy` to create them, then send the rows again"


def refuse_ingest(missing: dict[str, list[str]], datasource: str, hint: str = "") -> None:
    """Raise EngineError RTP508 (HTTP 503) when ``datasource`` has missing views."""
    views = missing.get(datasource)
    if views:
        raise EngineError(
            f"datasource '{datasource}' can't take rows: its materialized "
            f"view(s) {', '.join(views)} are missing on the engine, so they "
            "would never see them",
            code="RTP508",
            hint=hint or "run `rtp deploy`, then send the rows again",
        )
