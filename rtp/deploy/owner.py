"""Who holds a project's embedded database: ``.rtp/owner.json``.

chDB lets one process open a data folder. The process that opens it writes
``{"pid", "command", "url"}`` here (``url`` is filled in by ``rtp serve`` so other
commands can reach it) and removes the file when it closes the database.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from pathlib import Path

from rtp.errors import EngineError

_claims: dict[Path, int] = {}  # owner file -> how many opens this process holds


def owner_file(root: Path) -> Path:
    return Path(root) / ".rtp" / "owner.json"


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
    path.parent.mkdir(parents=True, exist_ok=True)
    if not holder:
        record = {"pid": os.getpid(), "command": command or " ".join(sys.argv), "url": url}
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(record), encoding="utf-8")
        tmp.replace(path)
    _claims[path] = _claims.get(path, 0) + 1


def set_url(root: Path, url: str) -> None:
    """Publish where this process serves the project (``rtp serve`` calls this)."""
    path = owner_file(root)
    data = read_owner(root)
    if data and int(data["pid"]) == os.getpid():
        data["url"] = url
        path.write_text(json.dumps(data), encoding="utf-8")


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
