"""Which engine a command talks to: ``open_backend(project, target)``.

A target is a name from ``rtp.yaml`` (``targets:``), a ``clickhouse://`` URL, or
``embedded``. Without one, ``RTP_CLICKHOUSE_URL`` wins over the project's
``default_target``. The embedded engine keeps its data under ``<project>/.rtp/data``.
"""

from __future__ import annotations

import os

from rtp.engine import Backend, owner
from rtp.errors import EngineError
from rtp.project.model import Project

ENV_URL = "RTP_CLICKHOUSE_URL"


def resolve_target(project: Project, target: str | None = None) -> str:
    """The URL (or ``embedded``) a target name stands for. Raises EngineError RTP506."""
    if target is None:
        target = os.environ.get(ENV_URL) or project.settings.default_target
    if target == "embedded" or target.startswith(("clickhouse://", "clickhouses://")):
        return target
    found = project.settings.target(target)
    if found is None:
        names = ", ".join(t.name for t in project.settings.targets)
        raise EngineError(f"unknown target '{target}'", code="RTP506",
                          hint=f"targets in rtp.yaml: {names}; or pass a clickhouse:// URL")
    return found.url


def open_backend(project: Project, target: str | None = None, *,
                 command: str | None = None) -> Backend:
    """Open the engine for ``target`` (see module doc). The embedded engine is claimed
    for this process (``.rtp/owner.json``) until the backend is closed.

    Raises EngineError RTP501 when the engine can't be opened or reached (naming the
    process that holds the embedded database), RTP506 for an unknown target name.
    """
    url = resolve_target(project, target)
    if url != "embedded":
        from rtp.engine.clickhouse import ClickHouseBackend

        return ClickHouseBackend(url)
    from rtp.engine.embedded import EmbeddedBackend

    root = project.root
    owner.claim(root, command)
    data = root / ".rtp" / "data"
    data.mkdir(parents=True, exist_ok=True)
    # the engine's user_files_path: an empty folder of rtp's (chDB 26.9 doesn't confine
    # file() to it yet; the embedded backend refuses callers' file() itself)
    user_files = root / ".rtp" / "user_files"
    user_files.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        return EmbeddedBackend(str(data), on_close=lambda: owner.release(root),
                               user_files=user_files)
    except EngineError:
        owner.release(root)
        raise
