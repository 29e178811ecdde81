"""One error hierarchy for rtp, with stable codes and locations.

    RtpError                      root; every error a user sees is one of these
    ├── ProjectError  RTP1xx      the project's files: YAML, keys, names, references
    ├── SchemaError   RTP2xx      datasources: types, engines, keys, indexes
    ├── SqlError      RTP3xx      pipes: templates, parameters, SQL, dependencies
    ├── RequestError  RTP4xx      values a caller sends at run time (bad parameter ...)
    ├── EngineError   RTP5xx      the ClickHouse engine or server (connection, timeouts)
    └── (tests)       RTP6xx      `rtp test` files and fixtures (ProjectError)

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


# code -> (class name, one-line title). The single registry of codes; docs/errors.md
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
    "RTP200": "invalid ClickHouse type",
    "RTP201": "unknown engine",
    "RTP202": "invalid engine option",
    "RTP203": "invalid sorting, primary or partition key",
    "RTP204": "invalid TTL, default, index or setting",
    "RTP300": "template syntax error",
    "RTP301": "invalid parameter definition",
    "RTP302": "unknown table or node",
    "RTP303": "dependency cycle",
    "RTP304": "SQL rejected by ClickHouse",
    "RTP305": "materialized or copy output does not fit its target",
    "RTP306": "invalid pipe structure",
    "RTP400": "invalid request parameter",
    "RTP401": "missing required parameter",
    "RTP402": "error raised by the template",
    "RTP403": "missing or invalid token",
    "RTP404": "unknown endpoint or datasource",
    "RTP405": "request body too large",
    "RTP406": "rate limited",
    "RTP407": "unreadable request body",
    "RTP408": "malformed idempotency key",
    "RTP409": "idempotent insert unsupported by the engine",
    "RTP410": "query over its memory or row limits",
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
    "RTP505": "cannot read input data",
    "RTP506": "unknown target",
    "RTP507": "query timed out",
    "RTP508": "datasource's materialized views are missing",
    "RTP509": "an interrupted deploy must be finished first",
    "RTP510": "stream source unavailable",
}


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
        if self.code not in CODES and self.code != "RTP000":
            raise ValueError(f"unregistered error code {self.code}")
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


class SchemaError(RtpError):
    code = "RTP200"


class SqlError(RtpError):
    code = "RTP304"


class RequestError(RtpError):
    """A caller's value is wrong; the server answers 400 (or ``status``)."""

    code = "RTP400"

    def __init__(self, message: str, *, status: int = 400, **kwargs) -> None:
        super().__init__(message, **kwargs)
        self.status = status


class EngineError(RtpError):
    code = "RTP500"


# error code -> HTTP status, for errors that are not RequestErrors (those carry .status)
_HTTP_STATUS = {"RTP109": 400, "RTP507": 408, "RTP501": 503, "RTP504": 409, "RTP508": 503,
                "RTP509": 409}


def http_status(error: RtpError) -> int:
    """The HTTP status for an error, for the server and for `rtp test`'s
    ``expected_http_status``: 4xx for what the caller can fix, 5xx otherwise."""
    if isinstance(error, RequestError):
        return error.status
    if error.code in _HTTP_STATUS:
        return _HTTP_STATUS[error.code]
    if isinstance(error, SqlError):
        return 400
    return 500


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
