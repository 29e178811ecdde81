"""Tokens: who may call which route.

Static tokens live in ``.rtp/tokens.json`` (mode 0600) as SHA-256 hashes with their
scopes; the token text is shown once, when it is created. Scopes, Tinybird-style:
``ADMIN``, ``PIPES:READ:<pipe>``, ``DATASOURCES:APPEND:<ds>``, ``DATASOURCES:READ:<ds>``
(``*`` as the resource matches every one). JWTs (HS256, signed with the store's
``jwt_secret``) carry ``scopes`` as ``[{"type": "PIPES:READ", "resource": "recs",
"fixed_params": {"shop": 3}}]`` and an optional ``exp``; ``fixed_params`` override any
value the caller sends.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
import os
import re
import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path

from rtp.errors import ProjectError, RequestError

SCOPE_TYPES = ("PIPES:READ", "DATASOURCES:APPEND", "DATASOURCES:READ")
_SCOPE_RE = re.compile(r"^(ADMIN|(PIPES:READ|DATASOURCES:APPEND|DATASOURCES:READ):"
                       r"([A-Za-z_][A-Za-z0-9_]*|\*))$")
PREFIX = "rtp_"


def parse_scope(text: str) -> str:
    """``text`` as a canonical scope. Raises RequestError (RTP400) when malformed."""
    scope = text.strip()
    if scope.upper() == "ADMIN":
        return "ADMIN"
    head, _, resource = scope.rpartition(":")
    scope = f"{head.upper()}:{resource}"
    if not _SCOPE_RE.match(scope):
        raise RequestError(f"'{text}' is not a scope", code="RTP400",
                           hint="scopes: ADMIN, PIPES:READ:<pipe>, DATASOURCES:APPEND:<ds>, "
                           "DATASOURCES:READ:<ds>")
    return scope


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
        return ("ADMIN" in self.scopes or f"{scope_type}:{resource}" in self.scopes
                or f"{scope_type}:*" in self.scopes)

    def fixed(self, scope_type: str, resource: str) -> dict:
        return {**self.fixed_params.get(f"{scope_type}:*", {}),
                **self.fixed_params.get(f"{scope_type}:{resource}", {})}


class TokenStore:
    """The tokens file. Reads are cached and re-read when the file changes (so
    ``rtp token revoke`` takes effect on a running server within a second)."""

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
                raise ProjectError(f"cannot read {self.path}: {exc}", code="RTP101",
                                   hint="restore it from a backup or delete it to start "
                                   "over (every token is then lost)") from None
            self._mtime = stat.st_mtime_ns
        self._by_hash = {t["hash"]: t for t in self._data.get("tokens", [])}

    def _refresh(self) -> None:
        now = time.monotonic()
        if now - self._checked < 1.0:
            return
        self._checked = now
        try:
            mtime = self.path.stat().st_mtime_ns
        except FileNotFoundError:
            mtime = None
        if mtime != self._mtime:
            self.load()

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump(self._data, out, indent=2)
        os.replace(tmp, self.path)
        self.load()

    # -- management ----------------------------------------------------------------
    @property
    def tokens(self) -> list[dict]:
        return list(self._data.get("tokens", []))

    @property
    def jwt_secret(self) -> str:
        if not self._data.get("jwt_secret"):
            self._data["jwt_secret"] = secrets.token_urlsafe(32)
            self.save()
        return self._data["jwt_secret"]

    def create(self, name: str, scopes: list[str]) -> str:
        """Add a token and return its text (the only time it is seen).

        Raises RequestError (RTP400) for a bad scope or a name already in use.
        """
        canonical = sorted({parse_scope(s) for s in scopes})
        if not canonical:
            raise RequestError("a token needs at least one --scope", code="RTP400")
        if any(t["name"] == name for t in self.tokens):
            raise RequestError(f"a token named '{name}' exists", code="RTP400",
                               hint="revoke it first or choose another name")
        token = PREFIX + secrets.token_urlsafe(32)
        self._data.setdefault("tokens", []).append({
            "name": name, "hash": hash_token(token), "scopes": canonical,
            "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        })
        self.jwt_secret  # noqa: B018 - creates the signing secret with the first token
        self.save()
        return token

    def ensure_admin(self) -> str | None:
        """Create the admin token if there is none; returns its text then, else None."""
        if any("ADMIN" in t["scopes"] for t in self.tokens):
            return None
        return self.create("admin", ["ADMIN"])

    def revoke(self, name: str) -> None:
        """Remove a token. Raises RequestError (RTP404) when there is none of that name."""
        kept = [t for t in self.tokens if t["name"] != name]
        if len(kept) == len(self.tokens):
            raise RequestError(f"there is no token named '{name}'", code="RTP404", status=404)
        self._data["tokens"] = kept
        self.save()

    # -- checking ------------------------------------------------------------------
    def grant(self, token: str | None) -> Grant:
        """What ``token`` may do. Raises RequestError (RTP403, status 403) when it is
        missing, unknown, expired or badly signed."""
        if not token:
            raise _forbidden("a token is required: send Authorization: Bearer <token> "
                             "or ?token=<token>")
        self._refresh()
        if token.count(".") == 2:
            return self._jwt_grant(token)
        entry = self._by_hash.get(hash_token(token))
        if entry is None:
            raise _forbidden("invalid token")
        return Grant(entry["name"], frozenset(entry["scopes"]))

    def _jwt_grant(self, token: str) -> Grant:
        claims = decode_jwt(token, self._data.get("jwt_secret", ""))
        scopes, fixed = set(), {}
        for item in claims.get("scopes", []):
            if not isinstance(item, dict):
                raise _forbidden("invalid token: each scope must be an object")
            scope = f"{item.get('type', '')}:{item.get('resource', '')}"
            if not _SCOPE_RE.match(scope) or scope == "ADMIN":
                raise _forbidden(f"invalid token: unknown scope {scope}")
            scopes.add(scope)
            if item.get("fixed_params"):
                if not isinstance(item["fixed_params"], dict):
                    raise _forbidden("invalid token: fixed_params must be an object")
                fixed[scope] = dict(item["fixed_params"])
        return Grant(str(claims.get("name", "jwt")), frozenset(scopes), fixed)


def _forbidden(message: str) -> RequestError:
    return RequestError(message, code="RTP403", status=403)


# -- JWT HS256 -------------------------------------------------------------------------


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def encode_jwt(claims: dict, secret: str) -> str:
    """An HS256 JWT for ``claims``."""
    head = _b64(json.dumps({"alg": "HS256", "typ": "JWT"}, separators=(",", ":")).encode())
    body = _b64(json.dumps(claims, separators=(",", ":"), default=str).encode())
    signing = f"{head}.{body}".encode()
    sig = hmac.new(secret.encode(), signing, hashlib.sha256).digest()
    return f"{head}.{body}.{_b64(sig)}"


def decode_jwt(token: str, secret: str, now: float | None = None) -> dict:
    """The claims of an HS256 ``token`` signed with ``secret``.

    Raises RequestError (RTP403) for a bad signature, another algorithm, or an expired
    ``exp``.
    """
    if not secret:
        raise _forbidden("invalid token: this server has no JWT secret yet")
    try:
        head_b64, body_b64, sig_b64 = token.split(".")
        header = json.loads(_unb64(head_b64))
        signature = _unb64(sig_b64)
    except (ValueError, TypeError):
        raise _forbidden("invalid token: not a JWT") from None
    if not isinstance(header, dict) or header.get("alg") != "HS256":
        raise _forbidden("invalid token: only HS256 JWTs are accepted")
    expected = hmac.new(secret.encode(), f"{head_b64}.{body_b64}".encode(),
                        hashlib.sha256).digest()
    if not hmac.compare_digest(signature, expected):
        raise _forbidden("invalid token: bad signature")
    try:
        claims = json.loads(_unb64(body_b64))
    except ValueError:
        raise _forbidden("invalid token: unreadable claims") from None
    if not isinstance(claims, dict):
        raise _forbidden("invalid token: claims must be an object")
    exp = claims.get("exp")
    if exp is not None and (not isinstance(exp, int | float) or (now or time.time()) >= exp):
        raise _forbidden("token expired")
    return claims


class NoAuth:
    """Stands in for a TokenStore when authentication is off (``rtp dev --no-auth``)."""

    def grant(self, token: str | None) -> Grant:
        return Grant("anonymous", frozenset({"ADMIN"}))
