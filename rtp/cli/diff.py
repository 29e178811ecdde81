"""How ``rtp deploy diff`` and ``rtp test --target staging|live`` ask a version for an
endpoint's answer: over HTTP from the server that holds the embedded database
(``?__stage=staging`` with its control token), or on the target directly (the live and
staged versions' pipes, as a server would run them)."""

from __future__ import annotations

import contextlib
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from rtp.cli import remote
from rtp.cli.common import open_target
from rtp.deploy import versions as v
from rtp.engine.limits import Limits
from rtp.errors import EngineError, RequestError, RtpError, http_status
from rtp.ops import stage as ops
from rtp.ops.build import build
from rtp.project.load import load_project
from rtp.query import run_pipe


def split(request: str) -> tuple[str, str, dict]:
    """(pipe, format, parameters) of ``/v0/pipes/NAME.json?a=1`` or ``NAME?a=1``."""
    parts = urllib.parse.urlsplit(request)
    path = parts.path.removeprefix("/v0/pipes/").strip("/")
    name, _, fmt = path.partition(".")
    params = {
        k: vs[0] if len(vs) == 1 else vs
        for k, vs in urllib.parse.parse_qs(parts.query, keep_blank_values=True).items()
        if k not in ("token", "__stage")
    }
    return name, fmt or "json", params


@dataclass
class Answer:
    """An endpoint's answer: its rows, or the error (text and HTTP status)."""

    rows: list | None
    seconds: float
    error: str | None = None
    status: int = 200
    statistics: dict = field(default_factory=dict)

    @property
    def value(self) -> object:
        """What ``rtp deploy diff`` compares: the rows, or the error's text."""
        return self.rows if self.error is None else self.error


def _answer(body: bytes, started: float) -> Answer:
    import json

    try:
        data = json.loads(body)
        return Answer(
            data.get("data"), time.perf_counter() - started, None, 200, data.get("statistics", {})
        )
    except ValueError:
        return Answer(None, time.perf_counter() - started, body.decode("utf-8", "replace"))


def _failed(exc: RtpError, started: float) -> Answer:
    return Answer(
        None, time.perf_counter() - started, f"{exc.code}: {exc.message}", http_status(exc)
    )


def recorded(root: Path, target: str | None, n: int) -> list[str]:
    """The last ``n`` endpoint requests the server holding the embedded database
    answered. Raises RequestError RTP400 when no server holds it."""
    model, _ = load_project(root)
    server = remote.server_for(model, target)
    if server is None:
        raise RequestError(
            "--recent reads the requests a running server answered, and none holds this "
            "project's embedded database",
            code="RTP400",
            hint="start `rtp serve` (or `rtp dev`), or give a file of requests",
        )
    return server.lifecycle("recent")["requests"][-n:]


@contextlib.contextmanager
def answerer(root: Path, target: str | None) -> Iterator:
    """A function ``(pipe, parameters, staged) -> Answer``. Raises EngineError RTP516
    when nothing is staged."""
    model, _ = load_project(root)
    server = remote.server_for(model, target)
    if server is not None:

        def over_http(name: str, params: dict, staged: bool) -> Answer:
            params = {**params, **({"__stage": "staging"} if staged else {})}
            started = time.perf_counter()
            try:
                body = server.request("GET", f"/v0/pipes/{name}.json", params=params).content
                return _answer(body, started)
            except RtpError as exc:
                return _failed(exc, started)

        yield over_http
        return
    backend = open_target(model, target, "rtp deploy diff")
    try:
        found = v.read_versions(backend)
        staged_version = v.find(found, v.STAGING)
        if staged_version is None:
            raise EngineError(
                "no version is staged", code="RTP516", hint="run `rtp deploy --stage` first"
            )
        live_version = v.find(found, v.LIVE)
        live = (live_version and ops.version_build(root, live_version)) or build(root, check=False)
        staged = ops.version_build(root, staged_version) or build(root, check=False)
        tables = staged_version.physical()

        def local(name: str, params: dict, use_staged: bool) -> Answer:
            built = staged if use_staged else live
            started = time.perf_counter()
            try:
                body, _ = run_pipe(
                    built.compiled,
                    backend,
                    name,
                    params,
                    "json",
                    limits=Limits(deadline=30.0),
                    tables=tables if use_staged else None,
                )
                return _answer(body, started)
            except RtpError as exc:
                return _failed(exc, started)

        yield local
    finally:
        backend.close()
