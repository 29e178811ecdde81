"""One error hierarchy for rtp, with stable codes and locations.

    RtpError                      root; every error a user sees is one of these
    ├── ProjectError  RTP1xx      the project's files: YAML, keys, names, references
    │   └── SuiteError RTP6xx     `rtp test` files and fixtures
    ├── SchemaError   RTP2xx      datasources: types, engines, keys, indexes
    ├── SqlError      RTP3xx      pipes: templates, parameters, SQL, dependencies
    ├── RequestError  RTP4xx      values a caller sends at run time (bad parameter ...)
    │   └── TemplateRaisedError   RTP402: the template's ``error(message, status)``
    └── EngineError   RTP5xx      the ClickHouse engine or server (connection, timeouts)

A code's family (its first digit) decides everything about it, from one table,
:data:`FAMILIES`: the class that may carry it, its HTTP status (with per-code overrides
in :data:`HTTP_STATUS`) and the CLI's exit code. Constructing an error whose class is
not its code's family class raises ValueError, so a mismatch fails the first test that
reaches it (and ``tests/test_error_mapping.py`` scans every raise site). The one status
chosen per instance is RTP402's: a template's ``error(message, status)`` picks it, as
in Tinybird.

Each error carries a code (``RTP102``), a message, an optional hint saying what to do
and an optional :class:`Location` (file, line, column, span). ``rtp check`` collects
errors as *problems* and reports them all; other commands raise the first one.
The codes are documented in ``docs/errors.md``; a code never changes meaning.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class Location:
    """A place in a user's file. ``line`` and ``column`` are 1-based; ``length`` is the
    number of characters to underline (at least one)."""

    file: str
    line: int = 0
    column: int = 0
    length: int = 1

    def __str__(self) -> str:
        if not self.line:
            return self.file
        return f"{self.file}:{self.line}:{self.column or 1}"


# code -> one-line title. The single registry of codes; docs/errors.md
# documents each and a test keeps the two in step.
CODES: dict[str, str] = {
    "RTP100": "project not found",
    "RTP101": "YAML syntax error",
    "RTP102": "unknown key",
    "RTP103": "missing key",
    "RTP104": "wrong value type",
    "RTP105": "duplicate name",
    "RTP106": "invalid name",
    "RTP107": "invalid value",
    "RTP108": "unknown connection",
    "RTP109": "the project has errors",
    "RTP110": "unknown target",
    "RTP111": "no active stream source",
    "RTP200": "invalid ClickHouse type",
    "RTP201": "unknown engine",
    "RTP202": "invalid engine option",
    "RTP203": "invalid sorting, primary or partition key",
    "RTP204": "invalid TTL, default, index or setting",
    "RTP205": "stream messages don't fit the datasource",
    "RTP300": "template syntax error",
    "RTP301": "invalid parameter definition",
    "RTP302": "unknown table or node",
    "RTP303": "dependency cycle",
    "RTP304": "SQL rejected by ClickHouse",
    "RTP305": "materialized or copy output does not fit its target",
    "RTP306": "invalid pipe structure",
    "RTP310": "cache on a node that reads a request parameter",
    "RTP311": "endpoint node reads a table without its primary key (--strict)",
    "RTP312": "a cluster would split a view's groups across shards",
    "RTP400": "invalid request parameter",
    "RTP401": "missing required parameter",
    "RTP402": "error raised by the template",
    "RTP403": "missing or invalid token",
    "RTP404": "unknown endpoint or datasource",
    "RTP405": "request body too large",
    "RTP406": "rate limited",
    "RTP407": "unreadable request body",
    "RTP408": "malformed idempotency key",
    "RTP409": "retired: idempotent insert unsupported by the engine, now RTP511",
    "RTP410": "query over its memory or row limits",
    "RTP411": "cannot read input data",
    "RTP412": "unsupported request body type",
    "RTP413": "the caller hung up before its query ran",
    "RTP600": "test names an unknown endpoint",
    "RTP601": "test sends an unknown parameter",
    "RTP602": "fixture for an unknown datasource",
    "RTP603": "fixture row doesn't fit its datasource",
    "RTP604": "test case expects nothing",
    "RTP605": "test name repeated in a file",
    "RTP606": "test file in a format rtp can't run",
    "RTP500": "engine error",
    "RTP501": "engine unavailable",
    "RTP502": "ClickHouse server too old for a feature",
    "RTP503": "deploy step failed",
    "RTP504": "change needs --allow-destructive",
    "RTP505": "retired: cannot read input data, now RTP411",
    "RTP506": "retired: unknown target, now RTP110",
    "RTP507": "query timed out",
    "RTP508": "datasource's materialized views are missing",
    "RTP509": "an interrupted deploy must be finished first",
    "RTP510": "stream source unavailable",
    "RTP511": "idempotent insert unsupported by the engine",
    "RTP512": "Kafka broker unreachable",
    "RTP513": "Kafka topic not found",
    "RTP515": "another deploy holds the target's lock",
    "RTP516": "no such deploy version",
    "RTP517": "a staged version is in the way",
    "RTP518": "a forward_query can't feed a staged view on a cluster",
}

# Retired codes -> the code that replaced them. A retired code is never raised again (nor
# reused for something else); its section in docs/errors.md stays, pointing at the new one.
RETIRED: dict[str, str] = {"RTP409": "RTP511", "RTP505": "RTP411", "RTP506": "RTP110"}


class RtpError(Exception):
    """Root of every error rtp reports to a person."""

    code = "RTP000"

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        location: Location | None = None,
        hint: str | None = None,
        severity: str = "error",
    ) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code
        _check_code(type(self), self.code)
        self.message = message
        self.location = location
        self.hint = hint
        self.severity = severity

    def __str__(self) -> str:
        where = f"{self.location}: " if self.location else ""
        return f"{where}{self.code} {self.message}"

    def to_dict(self) -> dict:
        loc = self.location
        return {
            "code": self.code,
            "severity": self.severity,
            "message": self.message,
            "hint": self.hint,
            "file": loc.file if loc else None,
            "line": loc.line if loc else None,
            "column": loc.column if loc else None,
            "length": loc.length if loc else None,
        }


class ProjectError(RtpError):
    code = "RTP100"


class SuiteError(ProjectError):
    """A problem in the project's tests (``tests/``, ``fixtures/``, Tinybird ``.test``
    files): RTP6xx."""

    code = "RTP600"


class SchemaError(RtpError):
    code = "RTP200"


class SqlError(RtpError):
    code = "RTP304"


class RequestError(RtpError):
    """A caller's value is wrong; the HTTP status comes from the code (:func:`http_status`)."""

    code = "RTP400"


class TemplateRaisedError(RequestError):
    """RTP402: the template called ``error(message, status)`` or ``custom_error(...)``.
    The one error whose HTTP status is chosen per instance: Tinybird lets a template
    choose it. Every other status comes from the code's family and :data:`HTTP_STATUS`."""

    code = "RTP402"

    def __init__(self, message: str, *, status: int = 400, **kwargs) -> None:
        super().__init__(message, **kwargs)
        self.status = status


class EngineError(RtpError):
    code = "RTP500"


@dataclass(frozen=True)
class Family:
    """What every code of one family (``RTP1xx`` ...) shares."""

    cls: type[RtpError]  # the class that carries its codes (subclasses may too)
    status: int  # HTTP status, unless HTTP_STATUS names the code
    exit: int  # CLI exit code when such an error stops a command


# The one mapping from a code's family to class, HTTP status and exit code
# (docs/errors.md shows it; tests/test_error_mapping.py pins it). HTTP: 4xx for what the
# caller can fix (a parameter, SQL the engine refused for the caller's values), 5xx for
# what the server's operator must (the project, the engine). Exit: 2 when the command
# could not run as asked (usage, project, input), 1 when it ran and the engine failed;
# `rtp check` and `rtp test` also exit 1 when they find problems (they did their job).
FAMILIES: dict[str, Family] = {
    "1": Family(ProjectError, 500, 2),
    "2": Family(SchemaError, 500, 2),
    "3": Family(SqlError, 400, 2),
    "4": Family(RequestError, 400, 2),
    "5": Family(EngineError, 500, 1),
    "6": Family(SuiteError, 500, 2),
}

# codes whose HTTP status is not their family's (Tinybird's statuses where it has them)
HTTP_STATUS: dict[str, int] = {
    "RTP109": 400,  # the project has errors (POST /v0/deploy refused it)
    "RTP403": 403,  # missing or invalid token, or a scope it lacks
    "RTP404": 404,  # unknown endpoint, datasource, token, format
    "RTP405": 413,  # body too large
    "RTP406": 429,  # rate limited
    "RTP412": 415,  # multipart body to an endpoint
    "RTP413": 499,  # the caller hung up first (nginx's "client closed request")
    "RTP501": 503,  # engine unavailable
    "RTP504": 409,  # change needs --allow-destructive
    "RTP507": 408,  # query timed out
    "RTP508": 503,  # datasource's materialized views are missing
    "RTP509": 409,  # an interrupted deploy must be finished first
    "RTP511": 501,  # idempotent insert unsupported by the engine
    "RTP515": 409,  # another deploy holds the target's lock
    "RTP516": 409,  # no such deploy version
    "RTP517": 409,  # a staged version is in the way
    "RTP518": 501,  # a forward_query feeding a staged view, on a cluster
}


def family(code: str) -> Family:
    """The family of a registered code. Raises ValueError for an unknown code."""
    if code not in CODES or code[3:4] not in FAMILIES:
        raise ValueError(f"unregistered error code {code}")
    return FAMILIES[code[3]]


def _check_code(cls: type, code: str) -> None:
    if code in RETIRED:
        raise ValueError(f"{code} is retired; raise {RETIRED[code]}")
    home = family(code).cls
    if not issubclass(cls, home):
        raise ValueError(
            f"{cls.__name__} can't carry {code}: {code[:4]}xx codes are {home.__name__}s"
        )


def error_for(code: str, message: str, **kwargs) -> RtpError:
    """An error of ``code``'s family class, e.g. for an error read back from a server's
    answer. A retired code becomes its successor; an unknown one RTP500."""
    code = RETIRED.get(code, code)
    if code not in CODES:
        code = "RTP500"
    return family(code).cls(message, code=code, **kwargs)


def from_dict(data: dict) -> RtpError:
    """The error :meth:`RtpError.to_dict` wrote (``rtp check --format json``, a server's
    ``problems``), as :func:`error_for` builds it."""
    where = None
    if data.get("file"):
        where = Location(
            str(data["file"]),
            int(data.get("line") or 0),
            int(data.get("column") or 0),
            int(data.get("length") or 1),
        )
    return error_for(
        str(data.get("code")),
        str(data.get("message", "")),
        location=where,
        hint=data.get("hint"),
        severity=data.get("severity") or "error",
    )


def http_status(error: RtpError) -> int:
    """The HTTP status for an error, for the server and for `rtp test`'s
    ``expected_http_status``: the code's (HTTP_STATUS) or its family's; RTP402's is the
    template's."""
    if isinstance(error, TemplateRaisedError):
        return error.status
    return HTTP_STATUS.get(error.code) or family(error.code).status


def exit_code(error: RtpError) -> int:
    """The CLI's exit code when ``error`` stops a command: its family's."""
    return family(error.code).exit


@dataclass
class Problems:
    """Collects errors so a command can report every problem at once."""

    items: list[RtpError] = field(default_factory=list)

    def add(self, error: RtpError) -> None:
        self.items.append(error)

    def extend(self, errors: list[RtpError]) -> None:
        self.items.extend(errors)

    def __iter__(self):
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)

    @property
    def errors(self) -> list[RtpError]:
        return [e for e in self.items if e.severity == "error"]

    def sorted(self) -> list[RtpError]:
        def key(e: RtpError):
            loc = e.location
            return (loc.file if loc else "", loc.line if loc else 0, loc.column if loc else 0)

        return sorted(self.items, key=key)


def source_line(root: Path, location: Location) -> str | None:
    """The text of the line a location points at, or None when it can't be read."""
    if not location.line:
        return None
    try:
        lines = (root / location.file).read_text(encoding="utf-8").splitlines()
    except OSError:
        return None
    if location.line > len(lines):
        return None
    return lines[location.line - 1]
