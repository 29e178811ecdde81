"""Following a server target: what other ``rtp serve`` processes changed there.

One thread, ``rtp-watch``, asks the target every :data:`~rtp.server.tokens_target.POLL_EVERY`
seconds for :func:`rtp.deploy.serving.versions` (one query, ~3 ms on 18.16): when the
tokens or the JWT secret changed it reloads them (a revocation through any process is
refused here within a second); when a new release was deployed (``rtp deploy`` or
``POST /v0/deploy`` through any server) it builds the project's files again and serves
them, as ``POST /v0/deploy`` does in the process that ran it.

Every server reads the project from its own folder: ship the same files to every
machine (one image, one checkout). A server whose files differ from the release's says
so in its log and in ``/healthz`` (``release.matches`` false).
"""

from __future__ import annotations

import logging
import threading

from rtp.deploy import serving
from rtp.errors import RtpError
from rtp.ops.build import build
from rtp.server.tokens_target import POLL_EVERY

log = logging.getLogger("rtp.server")


class Watcher:
    """Polls the target for ``state`` (the app's ServerState) from :meth:`start` to
    :meth:`stop`."""

    def __init__(self, state, *, every: float = POLL_EVERY) -> None:
        self.state = state
        self.every = every
        self.release = 0  # the newest release version seen
        self.digest = ""  # that release's digest
        self.matches: bool | None = None  # this server's files are that release's
        self.reloads = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self.release, self.digest = serving.latest_release(self.state.backend)
        if self.digest:
            self.matches = self.digest == self.state.digest
        self._thread = threading.Thread(target=self._loop, name="rtp-watch", daemon=True)
        self._thread.start()
        if hasattr(self.state.tokens, "watched"):  # the checks need not ask the target now
            self.state.tokens.watched = True

    def stop(self) -> None:
        if hasattr(self.state.tokens, "watched"):
            self.state.tokens.watched = False
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def status(self) -> dict:
        return {"version": self.release, "digest": self.digest, "matches": self.matches}

    def _loop(self) -> None:
        while not self._stop.wait(self.every):
            try:
                self.poll()
            except RtpError as exc:  # the target is away: tokens go stale, then refused
                log.warning("could not follow the target: %s", exc)
            except Exception:  # never let one bad round stop watching
                log.exception("watching the target failed")

    def poll(self) -> None:
        versions = serving.versions(self.state.backend)
        tokens = self.state.tokens
        if hasattr(tokens, "sync"):
            tokens.sync(versions)
        if versions[2] != self.release:
            self.release, self.digest = serving.latest_release(self.state.backend)
            self.follow()

    def follow(self) -> None:
        """Serve the project's files as they are now, if they differ from what is
        served (a deploy through another process)."""
        state = self.state
        root = state.project.root
        with state.deploying:  # not while POST /v0/deploy of this process runs
            digest = serving.project_digest(root)
            self.matches = digest == self.digest
            if not self.matches:
                log.warning(
                    "release %s was deployed, but this server's project files are %s: "
                    "serving them; ship the same files to every server",
                    self.digest,
                    digest,
                )
            if digest == state.digest:
                return
            state.reload(build(root, check=False))
        self.reloads += 1
        log.info("serving release %s (%d endpoints)", self.digest, len(state.endpoints))
