"""Commands through a running server: while ``rtp serve`` or ``rtp dev`` holds a project's
embedded database, ``rtp sql``, ``rtp append`` and ``rtp deploy`` send their work to it.

The holder publishes its URL and a control token in ``.rtp/owner.json`` (mode 0600; see
:mod:`rtp.engine.owner`). :func:`server_for` returns a :class:`Server` for it when the
command targets the embedded engine; HTTP failures become RtpErrors here and nowhere
else. A holder that publishes no URL (another command) is named by ``open_backend``.
"""

from __future__ import annotations

import gzip
import json
import os
from typing import TYPE_CHECKING

from rtp.engine import owner
from rtp.engine.target import resolve_target
from rtp.errors import EngineError, RtpError, error_for, from_dict
from rtp.ingest import RowMapper
from rtp.project.model import Project

if TYPE_CHECKING:
    import httpx

# under the server's default body limit (10 MiB, compressed and expanded)
MAX_REQUEST_BYTES = 4 * 1024 * 1024


class Server:
    """The running server that holds a project's embedded database."""

    def __init__(self, record: dict, *, timeout: float = 300.0) -> None:
        self.url = str(record["url"]).rstrip("/")
        self.token = str(record["token"])
        self.pid = record.get("pid")
        self.command = record.get("command") or "unknown command"
        import httpx  # loads only when a command talks to a running server

        self.timeout = httpx.Timeout(timeout, connect=5.0)

    def request(self, method: str, path: str, **kwargs) -> httpx.Response:
        """Send a request with the control token. Raises EngineError RTP501 when the
        server can't be reached, and the server's own error (code, message) for an
        answer of 400 or more."""
        import httpx

        headers = {"Authorization": f"Bearer {self.token}", **kwargs.pop("headers", {})}
        try:
            response = httpx.request(
                method, self.url + path, headers=headers, timeout=self.timeout, **kwargs
            )
        except httpx.TransportError as exc:
            raise EngineError(
                f"the embedded database of this project is held by process {self.pid} "
                f"({self.command}), but its server at {self.url} does not answer: "
                f"{exc or type(exc).__name__}",
                code="RTP501",
                hint=f"wait until it has started, or stop it (kill {self.pid}) and run "
                "this command again",
            ) from None
        if response.status_code >= 400:
            raise _error(response, self)
        return response

    def query(self, sql: str) -> tuple[list[tuple[str, str]], list[list]]:
        """``POST /v0/sql``: (columns as (name, type), rows as lists), like a backend's
        ``query``."""
        body = self.request("POST", "/v0/sql", json={"q": sql, "format": "json"}).json()
        meta = [(m["name"], m["type"]) for m in body.get("meta", [])]
        rows = [[row.get(name) for name, _ in meta] for row in body.get("data", [])]
        return meta, rows

    def append(
        self, datasource: str, records: list, mapper: RowMapper, kind: str, key: str | None = None
    ) -> tuple[int, int]:
        """``POST /v0/events``: records read from a file; returns (rows inserted, rows
        quarantined). NDJSON lines go as they are; CSV and Parquet records are turned
        into JSON events with the datasource's column mapping, so the server checks
        and quarantines them as it would locally. ``key``: each request carries the
        Idempotency-Key ``key.<n>`` (n: its place among the requests)."""
        lines = []
        for record in records:
            if kind == "ndjson" or record.error is not None or not isinstance(record.value, dict):
                lines.append(record.raw)
            else:
                lines.append(
                    json.dumps(mapper.to_event(record.value), ensure_ascii=False, default=str)
                )
        ok = bad = 0
        for n, chunk in enumerate(_chunks(lines, MAX_REQUEST_BYTES)):
            body = gzip.compress(("\n".join(chunk) + "\n").encode("utf-8"))
            headers = {"Content-Encoding": "gzip"}
            if key is not None:
                headers["Idempotency-Key"] = f"{key}.{n}"
            answer = self.request(
                "POST",
                "/v0/events",
                params={"name": datasource, "wait": "true"},
                content=body,
                headers=headers,
            ).json()
            ok += int(answer["successful_rows"])
            bad += int(answer["quarantined_rows"])
        return ok, bad

    def deploy(
        self, *, plan_only: bool, allow_destructive: bool, sql: bool = False, break_lock=False
    ) -> dict:
        """``POST /v0/deploy``: the server re-reads the project, plans and applies."""
        body = {"plan_only": plan_only, "allow_destructive": allow_destructive, "sql": sql}
        if break_lock:
            body["break_lock"] = True
        return self.request("POST", "/v0/deploy", json=body).json()

    def lifecycle(self, action: str, **flags) -> dict:
        """``POST /v0/deploy`` with ``action`` (stage, promote, rollback, discard, ls):
        the server runs the version command on the engine it holds."""
        return self.request("POST", "/v0/deploy", json={"action": action, **flags}).json()


def _chunks(lines: list[str], limit: int):
    """Runs of lines of at most ``limit`` bytes (a longer line goes alone)."""
    chunk: list[str] = []
    size = 0
    for line in lines:
        n = len(line.encode("utf-8")) + 1
        if chunk and size + n > limit:
            yield chunk
            chunk, size = [], 0
        chunk.append(line)
        size += n
    if chunk:
        yield chunk


def server_for(project: Project, target: str | None = None) -> Server | None:
    """The server to send a command to, or None to open the engine directly: None
    unless the target is the embedded engine and a live process other than this one
    holds it and publishes a URL and a control token. Raises ProjectError RTP110 for an
    unknown target."""
    if resolve_target(project, target) != "embedded":
        return None
    record = owner.read_owner(project.root)
    if not record or int(record["pid"]) == os.getpid():
        return None
    if not record.get("url") or not record.get("token"):
        return None
    return Server(record)


def _error(response: httpx.Response, server: Server) -> RtpError:
    body = None
    try:
        body = response.json()
        message, code = str(body["error"]), str(body.get("code") or "RTP500")
    except (ValueError, KeyError, TypeError):
        message, code = f"HTTP {response.status_code}: {response.text[:200]}", "RTP500"
    if response.status_code == 403:
        message = f"the server at {server.url} refused the control token: {message}"
    error = error_for(
        code,
        message,
        hint="restart that server: the token in .rtp/owner.json is renewed at every start"
        if response.status_code == 403
        else None,
    )
    # a project with errors: each problem as the server found it (file, line, column)
    found = body.get("problems", []) if isinstance(body, dict) else []
    error.problems = [from_dict(p) for p in found if isinstance(p, dict)]
    return error
