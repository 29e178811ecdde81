"""Tokens kept in a server target, shared by every ``rtp serve`` process serving it.

The rows live in ``_rtp_tokens`` and ``_rtp_secrets`` (:mod:`rtp.deploy.serving`): each
static token as the SHA-256 of its text (never the text), and the JWT signing secret.
Set ``RTP_JWT_SECRET`` on every server (and for ``rtp token jwt``) to keep the secret out
of the database altogether: then it is read from the environment and never written.

A server keeps the valid tokens in memory; its watcher (:mod:`rtp.server.watch`) asks
the target a few times a second whether anything changed and reloads them when it did,
so a token revoked through any process is refused by every one within a second. If the
target can't be asked for :data:`STALE_AFTER` seconds, the server refuses tokens (503)
rather than accept one that may have been revoked meanwhile.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

from rtp.deploy import serving
from rtp.errors import EngineError, RequestError
from rtp.server.tokens import (
    MISS_RECHECK,
    Tokens,
    TokenStore,
    canonical_scopes,
    hash_token,
    name_taken,
    new_token,
)

if TYPE_CHECKING:
    from rtp.engine import Backend

log = logging.getLogger("rtp.server")

ENV_SECRET = "RTP_JWT_SECRET"
POLL_EVERY = 0.25  # seconds between two looks at the target (a watcher, or inline)
STALE_AFTER = 5.0  # seconds without an answer from the target before tokens are refused


class TargetTokenStore(Tokens):
    """The tokens of a server target. While ``watched`` (set by a running
    :class:`~rtp.server.watch.Watcher`, which calls :meth:`sync`), a check only refuses
    stale tokens; otherwise it looks at the target itself, at most every
    :data:`POLL_EVERY` s.

    Raises EngineError RTP501 (from the constructor) when the tables are missing and
    can't be created, or the target can't be reached.
    """

    def __init__(self, backend: Backend, *, watched: bool = False) -> None:
        self.backend = backend
        self.watched = watched
        self._lock = threading.Lock()
        self._rows: list[serving.TokenRow] = []
        self._by_hash: dict[str, dict] = {}
        self._stored_secret = ""
        self._seen: tuple[int, int] | None = None
        self._fresh = 0.0  # time.monotonic() of the last good answer from the target
        self._miss_checked = 0.0  # time.monotonic() an unknown token last made it look
        serving.ensure(backend)
        self.sync(serving.versions(backend))

    # -- following the target --------------------------------------------------------
    def sync(self, versions: tuple[int, int, int]) -> None:
        """Reload the tokens if ``versions`` (:func:`rtp.deploy.serving.versions`) says
        they changed; either way the cache is fresh as of now."""
        seen = (versions[0], versions[1])
        if seen != self._seen:
            self.load()
            self._seen = seen
        self._fresh = time.monotonic()

    def load(self) -> None:
        rows = serving.read_tokens(self.backend)
        secret = serving.read_secret(self.backend)
        by_hash = {r.hash: _entry(r) for r in rows}
        with self._lock:
            self._rows, self._by_hash, self._stored_secret = rows, by_hash, secret

    def _refresh(self) -> None:
        age = time.monotonic() - self._fresh
        if not self.watched and age >= POLL_EVERY:
            try:
                self.sync(serving.versions(self.backend))
            except EngineError as exc:
                log.warning("could not read the tokens from the target: %s", exc)
            age = time.monotonic() - self._fresh
        if age > STALE_AFTER:
            raise EngineError(
                f"the tokens could not be read from the target for {age:.0f} s",
                code="RTP501",
                hint="the ClickHouse server is unreachable; tokens are refused until it "
                "answers again (a revoked token must not pass)",
            )

    # -- the Tokens interface ----------------------------------------------------------
    @property
    def tokens(self) -> list[dict]:
        with self._lock:
            return [_entry(r) for r in self._rows]

    def _lookup(self, hashed: str) -> dict | None:
        entry = self._by_hash.get(hashed)
        now = time.monotonic()
        if entry is None and now - self._miss_checked >= MISS_RECHECK:
            # a token just created through another server: look again before refusing
            # (at most every MISS_RECHECK s, so a flood of bad tokens costs little; the
            # watcher's last look doesn't count: it may predate the token)
            self._miss_checked = now
            try:
                self.sync(serving.versions(self.backend))
            except EngineError as exc:
                log.warning("could not read the tokens from the target: %s", exc)
            entry = self._by_hash.get(hashed)
        return entry

    def _secret(self) -> str:
        return os.environ.get(ENV_SECRET) or self._stored_secret

    @property
    def jwt_secret(self) -> str:
        """The signing secret: ``RTP_JWT_SECRET`` if set, else the target's (created on
        first use)."""
        env = os.environ.get(ENV_SECRET)
        if env:
            return env
        secret = serving.ensure_secret(self.backend)
        self._stored_secret = secret
        return secret

    def create(self, name: str, scopes: list[str]) -> str:
        """Add a token and return its text (the only time it is seen).

        Raises RequestError (RTP400) for a bad scope or a name already in use.
        """
        canonical = canonical_scopes(scopes)
        if any(r.name == name for r in serving.read_tokens(self.backend)):
            raise name_taken(name)
        token = new_token()
        serving.add_tokens(
            self.backend, [serving.TokenRow(hash_token(token), name, tuple(canonical), _now())]
        )
        if not os.environ.get(ENV_SECRET):
            serving.ensure_secret(self.backend)  # the signing secret comes with the first token
        self.load()
        return token

    def revoke(self, name: str) -> None:
        """Revoke the token(s) named ``name`` for every server. Raises RequestError
        (RTP404) when there is none of that name."""
        rows = [r for r in serving.read_tokens(self.backend) if r.name == name]
        if not rows:
            raise RequestError(f"there is no token named '{name}'", code="RTP404")
        serving.revoke_tokens(self.backend, rows)
        self.load()

    def import_file(self, path: Path) -> int | None:
        """Copy the tokens (hashes) and JWT secret of a ``tokens.json`` into the target,
        once: only when the target has never had a token nor a secret. Returns how many
        tokens were imported, None when nothing was (no file, a file that can't be read
        (logged), or a target that has tokens of its own).
        """
        path = Path(path)
        if not path.is_file() or serving.token_count(self.backend):
            return None
        if serving.read_secret(self.backend):
            return None
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            log.warning("not imported: cannot read %s: %s", path, exc)
            return None
        rows = [
            serving.TokenRow(t["hash"], t["name"], tuple(t["scopes"]), _created(t.get("created")))
            for t in data.get("tokens", [])
        ]
        if rows:
            serving.add_tokens(self.backend, rows)
        if data.get("jwt_secret"):
            serving.ensure_secret(self.backend, value=data["jwt_secret"])
        self.load()
        return len(rows)


def _entry(row: serving.TokenRow) -> dict:
    return {"name": row.name, "hash": row.hash, "scopes": list(row.scopes), "created": row.created}


def _now() -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime())


def _created(text: str | None) -> str:
    """tokens.json's ISO time as the table's DateTime text (now when missing)."""
    try:
        when = dt.datetime.fromisoformat(text or "").astimezone(dt.timezone.utc)
    except ValueError:
        return _now()
    return when.strftime("%Y-%m-%d %H:%M:%S")


def token_store(backend: Backend | None, tokens_file: Path, *, watched: bool = False) -> Tokens:
    """The store of a target's tokens: the file ``tokens_file`` for the embedded target
    (``backend`` None or embedded), the target's own tables for a server."""
    if backend is None or backend.name == "embedded":
        return TokenStore(tokens_file)
    return TargetTokenStore(backend, watched=watched)
