"""Tokens: who may call which route.

:class:`Tokens` checks a token, whatever keeps them. For the embedded target,
:class:`TokenStore` keeps static tokens in ``.rtp/tokens.json`` (mode 0600, replaced
atomically, changed under ``tokens.json.lock``) as SHA-256 hashes with their scopes; a
ClickHouse server target keeps them in its own tables, shared by every ``rtp serve``
(:mod:`rtp.server.tokens_target`). The token text is shown once, when it is created.
Scopes, Tinybird-style: ``ADMIN``, ``PIPES:READ:<pipe>``, ``DATASOURCES:APPEND:<ds>``,
``DATASOURCES:READ:<ds>`` (``*`` as the resource matches every one). JWTs (HS256 only,
signed with the store's ``jwt_secret``, checked by PyJWT) carry ``scopes`` as
``[{"type": "PIPES:READ", "resource": "recs", "fixed_params": {"shop": 3}}]`` and a
required ``exp``; ``fixed_params`` override any value the caller sends.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import hashlib
import json
import os
import re
import secrets
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import jwt

from rtp.errors import ProjectError, RequestError

# STAGING:READ: the staged deploy version of an endpoint (?__stage=staging, rtp.server.staging)
SCOPE_TYPES = ("PIPES:READ", "DATASOURCES:APPEND", "DATASOURCES:READ", "STAGING:READ")
_SCOPE_RE = re.compile(
    r"^(ADMIN|(PIPES:READ|DATASOURCES:APPEND|DATASOURCES:READ|STAGING:READ):"
    r"([A-Za-z_][A-Za-z0-9_]*|\*))$"
)
PREFIX = "rtp_"


def parse_scope(text: str) -> str:
    """``text`` as a canonical scope. Raises RequestError (RTP400) when malformed."""
    scope = text.strip()
    if scope.upper() == "ADMIN":
        return "ADMIN"
    head, _, resource = scope.rpartition(":")
    scope = f"{head.upper()}:{resource}"
    if not _SCOPE_RE.match(scope):
        raise RequestError(
            f"'{text}' is not a scope",
            code="RTP400",
            hint="scopes: ADMIN, PIPES:READ:<pipe>, DATASOURCES:APPEND:<ds>, "
            "DATASOURCES:READ:<ds>, STAGING:READ:<pipe>",
        )
    return scope


MISS_RECHECK = 0.05  # an unknown token makes the store look again, at most this often


def hash_token(token: str) -> str:
    # tokens are 256-bit random, so a fast hash is as good as a slow one here
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class Grant:
    """What one presented token may do."""

    name: str
    scopes: frozenset[str]
    fixed_params: dict = field(default_factory=dict)  # scope -> {param: value}

    def allows(self, scope_type: str, resource: str) -> bool:
        return (
            "ADMIN" in self.scopes
            or f"{scope_type}:{resource}" in self.scopes
            or f"{scope_type}:*" in self.scopes
        )

    def fixed(self, scope_type: str, resource: str) -> dict:
        return {
            **self.fixed_params.get(f"{scope_type}:*", {}),
            **self.fixed_params.get(f"{scope_type}:{resource}", {}),
        }


class Tokens:
    """Checking tokens, whatever keeps them: a subclass provides ``tokens``,
    ``jwt_secret``, ``create``, ``revoke``, ``_lookup`` (the entry of a token's hash) and
    ``_secret`` (the JWT secret, or "" when there is none yet, without creating one)."""

    def ensure_admin(self) -> str | None:
        """Create the admin token if there is none; returns its text then, else None."""
        if any("ADMIN" in t["scopes"] for t in self.tokens):
            return None
        return self.create("admin", ["ADMIN"])

    def _refresh(self) -> None:
        """Bring the cached tokens up to date (cheap; called on every check)."""

    def _lookup(self, hashed: str) -> dict | None:
        raise NotImplementedError

    def _secret(self) -> str:
        raise NotImplementedError

    # -- checking ------------------------------------------------------------------
    def grant(self, token: str | None) -> Grant:
        """What ``token`` may do. Raises RequestError (RTP403, status 403) when it is
        missing, unknown, expired or badly signed."""
        if not token:
            raise _forbidden(
                "a token is required: send Authorization: Bearer <token> or ?token=<token>"
            )
        self._refresh()
        if token.count(".") == 2:
            return self._jwt_grant(token)
        entry = self._lookup(hash_token(token))
        if entry is None:
            raise _forbidden("invalid token")
        return Grant(entry["name"], frozenset(entry["scopes"]))

    def _jwt_grant(self, token: str) -> Grant:
        claims = decode_jwt(token, self._secret())
        # Tinybird's shape: {"workspace_id", "name", "exp", "scopes": [{"type", "resource",
        # "fixed_params"}], "limits"}; claims rtp doesn't use are ignored
        name = claims.get("name", "jwt")
        if not isinstance(name, str):
            raise _forbidden("invalid token: name must be a string")
        items = claims.get("scopes")
        if not isinstance(items, list):
            raise _forbidden("invalid token: scopes must be a list")
        scopes, fixed = set(), {}
        for item in items:
            if not isinstance(item, dict):
                raise _forbidden("invalid token: each scope must be an object")
            scope = f"{item.get('type', '')}:{item.get('resource', '')}"
            if not _SCOPE_RE.match(scope) or scope == "ADMIN":
                raise _forbidden(f"invalid token: unknown scope {scope}")
            scopes.add(scope)
            if item.get("fixed_params") is not None:
                if not isinstance(item["fixed_params"], dict):
                    raise _forbidden("invalid token: fixed_params must be an object")
                fixed[scope] = dict(item["fixed_params"])
        return Grant(name, frozenset(scopes), fixed)


def canonical_scopes(scopes: list[str]) -> list[str]:
    """``scopes`` parsed, deduplicated and sorted. Raises RequestError (RTP400) for a bad
    scope or none at all."""
    canonical = sorted({parse_scope(s) for s in scopes})
    if not canonical:
        raise RequestError("a token needs at least one --scope", code="RTP400")
    return canonical


def new_token() -> str:
    """A fresh static token's text: ``rtp_`` and 256 random bits."""
    return PREFIX + secrets.token_urlsafe(32)


def name_taken(name: str) -> RequestError:
    return RequestError(
        f"a token named '{name}' exists",
        code="RTP400",
        hint="revoke it first or choose another name",
    )


class TokenStore(Tokens):
    """The tokens file (the embedded target's store). Reads are cached and re-read when
    the file changes (so ``rtp token revoke`` takes effect on a running server within a
    second)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._data: dict = {"jwt_secret": "", "tokens": []}
        self._by_hash: dict[str, dict] = {}
        self._mtime: float | None = None
        self._checked = 0.0
        self.load()

    # -- file ----------------------------------------------------------------------
    def load(self) -> None:
        try:
            stat = self.path.stat()
        except FileNotFoundError:
            self._data = {"jwt_secret": "", "tokens": []}
            self._mtime = None
        else:
            try:
                self._data = json.loads(self.path.read_text(encoding="utf-8"))
            except (OSError, ValueError) as exc:
                raise ProjectError(
                    f"cannot read {self.path}: {exc}",
                    code="RTP101",
                    hint="restore it from a backup or delete it to start "
                    "over (every token is then lost)",
                ) from None
            self._mtime = stat.st_mtime_ns
        self._by_hash = {t["hash"]: t for t in self._data.get("tokens", [])}

    def _refresh(self, every: float = 1.0) -> None:
        now = time.monotonic()
        if now - self._checked < every:
            return
        self._checked = now
        try:
            mtime = self.path.stat().st_mtime_ns
        except FileNotFoundError:
            mtime = None
        if mtime != self._mtime:
            self.load()

    @contextlib.contextmanager
    def _locked(self):
        """Hold the store's lock file and re-read the tokens: every change is a
        read-modify-write, and ``rtp token create`` may run while ``rtp serve`` writes."""
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(self.path.with_name(self.path.name + ".lock"), os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            self.load()
            yield
        finally:
            os.close(fd)  # releases the lock

    def save(self) -> None:
        """Replace the file atomically: a new private temp file (0600 from its creation,
        a unique name so two writers never share one), flushed to disk, then renamed over
        the old one. A crash at any point leaves the old file or the new one, whole."""
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(
            dir=self.path.parent, prefix=f".{self.path.name}.", suffix=".tmp"
        )
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                json.dump(self._data, out, indent=2)
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        _fsync_dir(self.path.parent)
        self.load()

    # -- management ----------------------------------------------------------------
    @property
    def tokens(self) -> list[dict]:
        return list(self._data.get("tokens", []))

    @property
    def jwt_secret(self) -> str:
        if not self._data.get("jwt_secret"):
            with self._locked():
                if not self._data.get("jwt_secret"):
                    self._data["jwt_secret"] = secrets.token_urlsafe(32)
                    self.save()
        return self._data["jwt_secret"]

    def create(self, name: str, scopes: list[str]) -> str:
        """Add a token and return its text (the only time it is seen).

        Raises RequestError (RTP400) for a bad scope or a name already in use.
        """
        canonical = canonical_scopes(scopes)
        token = new_token()
        with self._locked():
            if any(t["name"] == name for t in self.tokens):
                raise name_taken(name)
            self._data.setdefault("tokens", []).append(
                {
                    "name": name,
                    "hash": hash_token(token),
                    "scopes": canonical,
                    "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
                }
            )
            # the signing secret comes with the first token
            self._data["jwt_secret"] = self._data.get("jwt_secret") or secrets.token_urlsafe(32)
            self.save()
        return token

    def revoke(self, name: str) -> None:
        """Remove a token. Raises RequestError (RTP404) when there is none of that name."""
        with self._locked():
            kept = [t for t in self.tokens if t["name"] != name]
            if len(kept) == len(self.tokens):
                raise RequestError(f"there is no token named '{name}'", code="RTP404")
            self._data["tokens"] = kept
            self.save()

    def _lookup(self, hashed: str) -> dict | None:
        entry = self._by_hash.get(hashed)
        if entry is None:
            # a token `rtp token create` just wrote: look at the file again before
            # refusing (a stat at most every MISS_RECHECK s, so bad tokens cost little)
            self._refresh(every=MISS_RECHECK)
            entry = self._by_hash.get(hashed)
        return entry

    def _secret(self) -> str:
        return self._data.get("jwt_secret", "")


def _fsync_dir(path: Path) -> None:
    # the rename is durable once the folder's entry is on disk
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _forbidden(message: str, hint: str | None = None) -> RequestError:
    return RequestError(message, code="RTP403", hint=hint)


# -- JWT HS256 -------------------------------------------------------------------------

JWT_ALGORITHM = "HS256"  # the only one accepted: no "none", no RS*/ES*, no HS384/512
JWT_LEEWAY = 30  # seconds of clock skew allowed on exp, nbf and iat, between servers


def encode_jwt(claims: dict, secret: str) -> str:
    """An HS256 JWT for ``claims``."""
    return jwt.encode(claims, secret, algorithm=JWT_ALGORITHM)


def decode_jwt(token: str, secret: str) -> dict:
    """The claims of an HS256 ``token`` signed with ``secret``, checked by PyJWT.

    ``exp`` is required (as Tinybird requires it); ``exp``, ``nbf`` and ``iat`` are checked
    with :data:`JWT_LEEWAY` seconds of leeway. Raises RequestError (RTP403) for anything
    else: another algorithm, a bad signature, an expired or not yet valid token, or a
    token that isn't a JWT at all.
    """
    if not secret:
        raise _forbidden("invalid token: this server has no JWT secret yet")
    try:
        return jwt.decode(
            token,
            secret,
            algorithms=[JWT_ALGORITHM],
            leeway=JWT_LEEWAY,
            options={"require": ["exp"]},
        )
    except jwt.ExpiredSignatureError:
        raise _forbidden("token expired", hint="mint a new one") from None
    except jwt.ImmatureSignatureError:
        raise _forbidden(
            "invalid token: not yet valid (nbf or iat is in the future)",
            hint="check the clock of the machine that signed it",
        ) from None
    except jwt.InvalidAlgorithmError:
        raise _forbidden(f"invalid token: only {JWT_ALGORITHM} JWTs are accepted") from None
    except jwt.InvalidSignatureError:
        raise _forbidden("invalid token: bad signature") from None
    except jwt.MissingRequiredClaimError as exc:
        raise _forbidden(f"invalid token: the '{exc.claim}' claim is required") from None
    except jwt.InvalidTokenError as exc:
        raise _forbidden(f"invalid token: {exc}") from None
    except (ValueError, TypeError, OverflowError):  # PyJWT wraps these; a guard all the same
        raise _forbidden("invalid token: not a JWT") from None


class NoAuth:
    """Stands in for a TokenStore when authentication is off (``rtp dev --no-auth``)."""

    def grant(self, token: str | None) -> Grant:
        return Grant("anonymous", frozenset({"ADMIN"}))
