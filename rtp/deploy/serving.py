"""What a server target keeps for the ``rtp serve`` processes that serve it.

When the target is a ClickHouse server (or cluster), every ``rtp serve`` process on any
machine reads the same three tables of rtp's, in the target's database, so the processes
themselves hold nothing that must survive them:

``_rtp_tokens``
    one row per static token created (``hash`` = SHA-256 of the token, never its text;
    ``name``, ``scopes``, ``created``) and one more per revocation (``revoked = 1``).
    A token is valid while its hash has a creation row and no revocation row.
``_rtp_secrets``
    the JWT signing secret (``name = 'jwt_secret'``). The first row written wins, so two
    servers starting at once on an empty target agree on one secret.
``_rtp_releases``
    one row per deploy: the digest of the project files deployed and when. Servers
    watch it and reload their endpoints when it changes.

All three are append-only logs (no ALTER ... DELETE, no mutations): a change is one
INSERT, which every ClickHouse version since 18.16 makes visible atomically, and
:func:`versions` tells a watcher in one cheap query whether anything changed.
The tables are created by :func:`ensure` (``rtp deploy``, or the first ``rtp serve`` /
``rtp token`` that may run DDL); a serving user without DDL rights only reads and
inserts.
"""

from __future__ import annotations

import hashlib
import secrets as _secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from rtp.deploy.state import own_ddl
from rtp.engine import QueryError
from rtp.errors import EngineError
from rtp.project.load import PROJECT_FILE, SKIP_DIRS, TINYBIRD_MARKERS
from rtp.sql.escape import quote_string

if TYPE_CHECKING:
    from rtp.engine import Backend

TOKENS_TABLE = "_rtp_tokens"
SECRETS_TABLE = "_rtp_secrets"
RELEASES_TABLE = "_rtp_releases"
TABLES = (TOKENS_TABLE, SECRETS_TABLE, RELEASES_TABLE)
JWT_SECRET = "jwt_secret"

# name -> (columns, ORDER BY): created by ensure(); replicated to every node on a cluster
COLUMNS = {
    TOKENS_TABLE: (
        "hash String, name String, scopes Array(String), created DateTime, revoked UInt8, "
        "version UInt64",
        "(hash, version)",
    ),
    SECRETS_TABLE: (
        "name String, value String, created DateTime, version UInt64",
        "(name, version)",
    ),
    RELEASES_TABLE: ("digest String, deployed_at DateTime, version UInt64", "version"),
}

# what the project's files are, for the release digest: what load_project reads
SOURCE_SUFFIXES = (".yaml", ".datasource", ".pipe", ".incl", ".connection")


def _now() -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime())


def missing_tables(backend: Backend) -> list[str]:
    """rtp's serving tables the target's database lacks."""
    names = ", ".join(quote_string(t) for t in TABLES)
    _, rows = backend.query(
        f"SELECT name FROM system.tables WHERE database = currentDatabase() AND name IN ({names})"
    )
    have = {r[0] for r in rows}
    return [t for t in TABLES if t not in have]


def ensure(backend: Backend) -> None:
    """Create the tables that are missing.

    Raises EngineError RTP501 when one is missing and this user may not create it (a
    serving user with ``allow_ddl = 0``), naming what to run.
    """
    for table in missing_tables(backend):
        try:
            backend.execute(own_ddl(backend, table, *COLUMNS[table]))
        except QueryError as exc:
            raise EngineError(
                f"the target has no table {table} and this user can't create it: {exc.message}",
                code="RTP501",
                hint="run `rtp deploy` (or `rtp token list`) once against the target as a "
                "user with DDL rights; it creates rtp's tables",
            ) from None


# -- tokens ----------------------------------------------------------------------------


@dataclass(frozen=True)
class TokenRow:
    hash: str
    name: str
    scopes: tuple[str, ...]
    created: str


def read_tokens(backend: Backend) -> list[TokenRow]:
    """Every valid token (created, not revoked), oldest first."""
    _, rows = backend.query(
        "SELECT hash, any(name), any(scopes), toString(min(created)) "
        f"FROM `{TOKENS_TABLE}` GROUP BY hash HAVING max(revoked) = 0 "
        "ORDER BY min(version), hash"
    )
    return [TokenRow(h, n, tuple(s), c) for h, n, s, c in rows]


def add_tokens(backend: Backend, rows: list[TokenRow]) -> None:
    """Add ``rows`` as valid tokens (one INSERT: all of them or none)."""
    backend.insert_json(
        TOKENS_TABLE,
        [
            {
                "hash": row.hash,
                "name": row.name,
                "scopes": list(row.scopes),
                "created": row.created,
                "revoked": 0,
                "version": time.time_ns(),
            }
            for row in rows
        ],
    )


def revoke_tokens(backend: Backend, rows: list[TokenRow]) -> None:
    """Revoke ``rows`` (one INSERT: all of them or none)."""
    backend.insert_json(
        TOKENS_TABLE,
        [
            {
                "hash": r.hash,
                "name": r.name,
                "scopes": list(r.scopes),
                "created": _now(),
                "revoked": 1,
                "version": time.time_ns(),
            }
            for r in rows
        ],
    )


def token_count(backend: Backend) -> int:
    """Rows ever written to the tokens log (0: nothing was ever created or imported)."""
    return int(backend.query(f"SELECT count() FROM `{TOKENS_TABLE}`")[1][0][0])


# -- secrets ---------------------------------------------------------------------------


def read_secret(backend: Backend, name: str = JWT_SECRET) -> str:
    """The secret ``name`` (the first one written), or "" when there is none."""
    _, rows = backend.query(
        f"SELECT argMin(value, version) FROM `{SECRETS_TABLE}` WHERE name = {quote_string(name)} "
        "GROUP BY name"
    )
    return rows[0][0] if rows else ""


def ensure_secret(backend: Backend, name: str = JWT_SECRET, value: str | None = None) -> str:
    """The secret ``name``; when there is none, ``value`` (or a new random one) is
    written first. Reads back after writing: if another server wrote one at the same
    time, the first written is the one every server uses."""
    current = read_secret(backend, name)
    if current:
        return current
    backend.insert_json(
        SECRETS_TABLE,
        [
            {
                "name": name,
                "value": value or _secrets.token_urlsafe(32),
                "created": _now(),
                "version": time.time_ns(),
            }
        ],
    )
    return read_secret(backend, name)


# -- releases --------------------------------------------------------------------------


def project_digest(root: Path) -> str:
    """A digest of the project's source files (what ``load_project`` reads: rtp.yaml,
    YAML datasources and pipes, Tinybird datafiles; hidden folders, tools' folders,
    nested projects and the fixtures and tests folders left out), by relative path and
    content."""
    root = Path(root)
    h = hashlib.sha256()
    for path in _sources(root, root):
        h.update(path.relative_to(root).as_posix().encode() + b"\0")
        h.update(path.read_bytes() + b"\0")
    return h.hexdigest()[:16]


def _sources(root: Path, folder: Path) -> Iterator[Path]:
    for path in sorted(folder.iterdir()):
        if path.is_dir():
            if path.name.startswith(".") or path.name in SKIP_DIRS:
                continue
            if folder == root and path.name in ("fixtures", "tests"):
                continue
            if any((path / m).is_file() for m in (PROJECT_FILE, *TINYBIRD_MARKERS)):
                continue  # a nested project, not this one's
            yield from _sources(root, path)
        elif path.suffix in SOURCE_SUFFIXES or path.name in TINYBIRD_MARKERS:
            yield path


def publish_release(backend: Backend, root: Path) -> str:
    """Record that the project at ``root`` is deployed (every server watching the
    target reloads); returns its digest."""
    digest = project_digest(root)
    backend.insert_json(
        RELEASES_TABLE, [{"digest": digest, "deployed_at": _now(), "version": time.time_ns()}]
    )
    return digest


def record_release(backend: Backend, root: Path) -> str | None:
    """After a deploy: create rtp's serving tables where missing (the deploying user has
    DDL rights, the serving one may not) and publish the project at ``root`` unless the
    newest release is these very files. Returns the digest published, or None."""
    ensure(backend)
    if latest_release(backend)[1] == project_digest(root):
        return None
    return publish_release(backend, root)


def latest_release(backend: Backend) -> tuple[int, str]:
    """(version, digest) of the newest release; (0, "") when there is none."""
    _, rows = backend.query(
        f"SELECT version, digest FROM `{RELEASES_TABLE}` ORDER BY version DESC LIMIT 1"
    )
    return (int(rows[0][0]), rows[0][1]) if rows else (0, "")


def versions(backend: Backend) -> tuple[int, int, int]:
    """(tokens rows, secrets rows, newest release version): one query whose answer
    changes whenever anything a server holds from the target changed."""
    _, rows = backend.query(
        f"SELECT (SELECT count() FROM `{TOKENS_TABLE}`), (SELECT count() FROM "
        f"`{SECRETS_TABLE}`), (SELECT max(version) FROM `{RELEASES_TABLE}`)"
    )
    a, b, c = rows[0]
    return int(a), int(b), int(c or 0)
