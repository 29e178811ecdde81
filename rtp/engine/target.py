"""Which engine a command talks to: ``open_backend(project, target)``.

A target is a name from ``rtp.yaml`` (``targets:``), a ``clickhouse://`` URL, or
``embedded``. A URL with ``?cluster=name`` (or a target with ``cluster:``) is a
cluster (:mod:`rtp.engine.cluster`). Without one, ``RTP_CLICKHOUSE_URL`` wins over the project's
``default_target``. The embedded engine keeps its data under ``<project>/.rtp/data``.

chDB creates its files (parts of every insert and background merge, metadata, temporary
files) with the process umask, long after the open: so while a process holds the
embedded engine its umask is 0o077 and everything the engine writes is 0600/0700, under a
``.rtp`` that is 0700 itself. The umask is restored when the last embedded engine of the
process closes, so files the user asked rtp to write elsewhere keep their usual modes.
"""

from __future__ import annotations

import os
import threading

from rtp.engine import Backend, owner, paths
from rtp.errors import EngineError, ProjectError
from rtp.project.model import Project

ENV_URL = "RTP_CLICKHOUSE_URL"
PRIVATE_UMASK = 0o077  # no group or other bits on anything the embedded engine creates

_umask_lock = threading.Lock()
_umask_holds: list[int] = []  # the umask before the first hold; one entry per open engine


def resolve_target(project: Project, target: str | None = None) -> str:
    """The URL (or ``embedded``) a target name stands for. Raises ProjectError RTP110."""
    if target is None:
        target = os.environ.get(ENV_URL) or project.settings.default_target
    if target == "embedded" or target.startswith(("clickhouse://", "clickhouses://")):
        return target
    found = project.settings.target(target)
    if found is None:
        names = ", ".join(t.name for t in project.settings.targets)
        raise ProjectError(
            f"unknown target '{target}'",
            code="RTP110",
            hint=f"targets in rtp.yaml: {names}; or pass a clickhouse:// URL",
        )
    return found.url


def open_backend(
    project: Project, target: str | None = None, *, command: str | None = None
) -> Backend:
    """Open the engine for ``target`` (see module doc). The embedded engine is claimed
    for this process (``.rtp/owner.json``) until the backend is closed.

    Raises EngineError RTP501 when the engine can't be opened or reached (naming the
    process that holds the embedded database), ProjectError RTP110 for an unknown target name.
    """
    url = resolve_target(project, target)
    if url != "embedded":
        from rtp.engine.clickhouse import ClickHouseBackend, parse_url

        if parse_url(url)["cluster"]:
            from rtp.engine.cluster import ClusterBackend

            return ClusterBackend(url)
        return ClickHouseBackend(url)
    from rtp.engine.embedded import EmbeddedBackend

    root = project.root
    owner.claim(root, command)
    _hold_private_umask()
    data = paths.data_dir(root)
    # the engine's user_files_path: an empty folder of rtp's (chDB 26.9 doesn't confine
    # file() to it yet; the embedded backend refuses callers' file() itself)
    user_files = paths.user_files_dir(root)

    def close() -> None:
        owner.release(root)
        _release_private_umask()

    try:
        return EmbeddedBackend(str(data), on_close=close, user_files=user_files)
    except EngineError:
        close()
        raise


def _hold_private_umask() -> None:
    with _umask_lock:
        _umask_holds.append(os.umask(PRIVATE_UMASK))


def _release_private_umask() -> None:
    with _umask_lock:
        if _umask_holds:
            before = _umask_holds.pop()
            if not _umask_holds:
                os.umask(before)
