"""A readers-writer lock: many reads at once, a deploy's swap alone.

Writer-preferring (a waiting deploy stops new readers, so a stream of reads can't starve
it) and re-entrant where rtp needs it: the thread holding the exclusive side may take
either side again (a deploy's statements), and a reader may nest reads.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator


class RWLock:
    def __init__(self) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._readers: dict[int, int] = {}  # thread id -> depth
        self._writer: int | None = None
        self._writer_depth = 0
        self._writers_waiting = 0
        self.exclusive_since: float | None = None  # time.monotonic() the holder got it

    @contextlib.contextmanager
    def shared(self) -> Iterator[None]:
        me = threading.get_ident()
        with self._cond:
            if self._writer != me and me not in self._readers:
                while self._writer is not None or self._writers_waiting:
                    self._cond.wait()
            self._readers[me] = self._readers.get(me, 0) + 1
        try:
            yield
        finally:
            with self._cond:
                self._readers[me] -= 1
                if not self._readers[me]:
                    del self._readers[me]
                    self._cond.notify_all()

    @contextlib.contextmanager
    def exclusive(self) -> Iterator[None]:
        me = threading.get_ident()
        with self._cond:
            if self._writer != me:
                if me in self._readers:  # would wait for itself forever
                    raise RuntimeError("a reader can't take the exclusive hold")
                self._writers_waiting += 1
                try:
                    while self._writer is not None or self._readers:
                        self._cond.wait()
                finally:
                    self._writers_waiting -= 1
                self._writer = me
                self.exclusive_since = time.monotonic()
            self._writer_depth += 1
        try:
            yield
        finally:
            with self._cond:
                self._writer_depth -= 1
                if not self._writer_depth:
                    self._writer = None
                    self.exclusive_since = None
                    self._cond.notify_all()

    def held_exclusively_for(self) -> float:
        """Seconds the exclusive side has been held (0 when it isn't)."""
        since = self.exclusive_since
        return 0.0 if since is None else time.monotonic() - since
