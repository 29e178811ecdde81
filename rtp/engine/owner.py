"""Who holds a project's embedded database: ``.rtp/owner.json``.

chDB lets one process open a data folder. The process that opens it writes
``{"pid", "command", "url"}`` here and removes the file when it closes the database.
``rtp serve`` and ``rtp dev`` add their ``url`` and a ``token``: a control credential
(ADMIN scope) made fresh at every start, which ``rtp sql``, ``rtp append`` and
``rtp deploy`` use to work through the running server (:mod:`rtp.cli.remote`).

The file is written with mode 0600, so only who can read the project's ``.rtp/``
folder can use the token; that folder holds the database files themselves, so the
token gives no access its readers don't have already. :func:`rtp.engine.paths.state_dir`
keeps that folder itself private (0700).
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from pathlib import Path

from rtp.engine.paths import owner_file, state_dir
from rtp.errors import EngineError

_claims: dict[Path, int] = {}  # owner file -> how many opens this process holds


def read_owner(root: Path) -> dict | None:
    """The live owner's record, or None when no live process holds the database (a file
    left by a dead process counts as none)."""
    path = owner_file(root)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        pid = int(data["pid"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return data if _alive(pid) else None


def claim(root: Path, command: str | None = None, url: str | None = None) -> None:
    """Record this process as the owner. Raises EngineError RTP501 naming the holder
    when another live process owns the database."""
    path = owner_file(root)
    holder = read_owner(root)
    if holder and int(holder["pid"]) != os.getpid():
        where = f"; it serves {holder['url']}" if holder.get("url") else ""
        raise EngineError(
            f"the embedded database of this project is held by process {holder['pid']} "
            f"({holder.get('command') or 'unknown command'}){where}",
            code="RTP501",
            hint="stop that process, or run this command against its server / another "
            "--target; only one process can open the embedded database",
        )
    state_dir(root)
    if not holder:
        record = {"pid": os.getpid(), "command": command or " ".join(sys.argv), "url": url}
        _write(path, record)
    _claims[path] = _claims.get(path, 0) + 1


def set_url(root: Path, url: str, token: str | None = None) -> None:
    """Publish where this process serves the project and the control token that other
    rtp commands send it (``rtp serve`` and ``rtp dev`` call this)."""
    path = owner_file(root)
    data = read_owner(root)
    if data and int(data["pid"]) == os.getpid():
        data["url"] = url
        if token:
            data["token"] = token
        _write(path, data)


def _write(path: Path, record: dict) -> None:
    """Replace the file atomically, readable by its owner only (it may hold a token)."""
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        json.dump(record, out)
    os.chmod(tmp, 0o600)  # an older file of that name may have had wider permissions
    tmp.replace(path)


def release(root: Path) -> None:
    """Remove the owner file if this process wrote it and holds no other open."""
    path = owner_file(root)
    count = _claims.get(path, 0) - 1
    if count > 0:
        _claims[path] = count
        return
    _claims.pop(path, None)
    data = read_owner(root)
    if data and int(data["pid"]) == os.getpid():
        with contextlib.suppress(OSError):
            path.unlink()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
