"""One deploy at a time per target: a lock kept in the target itself (``_rtp_lock``).

Every machine and process deploying to a target sees the same table. Taking the lock
appends a ``take`` row, then reads back: of the takes not yet freed or expired, the
oldest holds the lock. A process that finds another holder frees its own row and raises
EngineError RTP515 naming the holder (command, host, process) and since when. A lock
expires ``ttl`` seconds after it was taken, at once when its process (on this host) is
gone, and ``break_lock=True`` frees whoever holds it.
"""

from __future__ import annotations

import contextlib
import os
import socket
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from rtp.deploy.state import own_ddl
from rtp.errors import EngineError
from rtp.sql.escape import quote_string

if TYPE_CHECKING:
    from rtp.engine import Backend

LOCK_TABLE = "_rtp_lock"
LOCK_COLUMNS = (
    "lock_id String, event String, command String, host String, pid UInt32, "
    "taken_at DateTime, expires UInt64, at UInt64"
)
TTL = 3600.0  # seconds a lock lives when its holder never frees it (another host died)


@dataclass(frozen=True)
class Holder:
    lock_id: str
    command: str
    host: str
    pid: int
    taken_at: str

    def describe(self) -> str:
        return f"{self.command} (process {self.pid} on {self.host}) since {self.taken_at} UTC"


def holders(backend: Backend) -> list[Holder]:
    """Takes not freed and not expired, oldest first (the first one holds the lock)."""
    _, rows = backend.query(
        "SELECT lock_id, any(command), any(host), any(pid), toString(min(taken_at)), "
        f"min(expires) FROM `{LOCK_TABLE}` GROUP BY lock_id "
        "HAVING countIf(event = 'free') = 0 ORDER BY min(at)"
    )
    now, host = time.time_ns(), socket.gethostname()
    out = []
    for lock_id, command, where, pid, taken, expires in rows:
        if int(expires) < now or (where == host and not _alive(int(pid))):
            continue
        out.append(Holder(lock_id, command, where, int(pid), taken))
    return out


@contextlib.contextmanager
def held(
    backend: Backend, command: str, *, ttl: float = TTL, break_lock: bool = False
) -> Iterator[Holder]:
    """Hold the target's deploy lock for the block. Raises EngineError RTP515 when
    another deploy holds it (unless ``break_lock``)."""
    _, rows = backend.query(
        "SELECT count() FROM system.tables WHERE database = currentDatabase() "
        f"AND name = '{LOCK_TABLE}'"
    )
    if not int(rows[0][0]):  # created once, by a user with DDL rights (a serving user has none)
        backend.execute(own_ddl(backend, LOCK_TABLE, LOCK_COLUMNS, "(lock_id, at)"))
    if break_lock:
        for other in holders(backend):
            _free(backend, other.lock_id)
    me = Holder(
        uuid.uuid4().hex[:16],
        command,
        socket.gethostname(),
        os.getpid(),
        time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime()),
    )
    backend.insert_json(
        LOCK_TABLE,
        [
            {
                "lock_id": me.lock_id,
                "event": "take",
                "command": command,
                "host": me.host,
                "pid": me.pid,
                "taken_at": me.taken_at,
                "expires": time.time_ns() + int(ttl * 1e9),
                "at": time.time_ns(),
            }
        ],
    )
    try:
        current = holders(backend)
        if current and current[0].lock_id != me.lock_id:
            raise EngineError(
                f"another deploy holds the target: {current[0].describe()}",
                code="RTP515",
                hint="wait for it to finish; if it died, run again with --break-lock",
            )
        yield me
    finally:
        _free(backend, me.lock_id)


def _free(backend: Backend, lock_id: str) -> None:
    backend.execute(
        f"INSERT INTO `{LOCK_TABLE}` (lock_id, event, command, host, pid, taken_at, "
        f"expires, at) SELECT {quote_string(lock_id)}, 'free', '', '', 0, now(), 0, "
        f"{time.time_ns()}"
    )


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
