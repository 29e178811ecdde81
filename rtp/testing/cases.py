"""Test files: ``tests/<pipe>.yaml``, a list of cases for one endpoint (Tinybird's layout).

```yaml
- name: most_viewed_first
  parameters: {event_type: view}          # or Tinybird's "event_type=view&days=7"
  expected_result: |                       # NDJSON rows (or a YAML list of mappings)
    {"product_id": "p1", "events": 2}
  ignore_order: false
- name: limit_is_checked
  parameters: "limit=0"
  expected_http_status: 400
  expected_error: "at least 1"             # text the error message contains
- name: cheap
  parameters: {}
  row_count: 2
  max_rows_read: 1000
  max_elapsed_ms: 50
```

The same file written by Tinybird Forward (``tb test create``/``update``) runs unchanged:
``.yaml`` or ``.yml``, ``parameters`` as a query string, and for an error case
``expected_http_status: 400`` with the error's text in ``expected_result`` (compared with
the answer's ``error`` exactly, as ``tb test run`` does; runs of spaces and line breaks
count as one space, since YAML folds long values). Tinybird Classic's test files are read
by :mod:`rtp.testing.classic`.

Files under the tests folder that are not such lists (pytest files, other YAML) are
ignored, so a project's own test suite can live beside them. A bad case is reported with
its file and line and left out; the other cases still run.
"""

from __future__ import annotations

import difflib
import json
import urllib.parse
from dataclasses import dataclass, field

from rtp.errors import Location, Problems, ProjectError, RtpError, SuiteError
from rtp.project.model import Project
from rtp.project.source import Doc, load_yaml

CASE_KEYS = {
    "name",
    "description",
    "parameters",
    "expected_result",
    "expected_http_status",
    "expected_error",
    "ignore_order",
    "row_count",
    "max_rows_read",
    "max_elapsed_ms",
}
EXPECTATIONS = (
    "expected_result",
    "expected_http_status",
    "row_count",
    "max_rows_read",
    "max_elapsed_ms",
)


@dataclass
class Case:
    pipe: str
    name: str
    file: str
    index: int
    location: Location
    parameters: dict = field(default_factory=dict)
    expected_result: list[dict] | None = None
    expected_status: int | None = None
    expected_error: str | None = None
    # Tinybird: the whole error text, in expected_result of a case expecting a 4xx/5xx
    expected_error_text: str | None = None
    # "endpoint": call the pipe; "sql": Classic data-quality SQL, passes when no rows;
    # "command": a Classic ``.test`` command whose output must equal ``expected_text``
    kind: str = "endpoint"
    sql: str | None = None
    max_time: float | None = None
    max_bytes_read: int | None = None
    expected_text: str | None = None
    ignore_order: bool = False
    row_count: int | None = None
    max_rows_read: int | None = None
    max_elapsed_ms: float | None = None
    doc: Doc | None = field(default=None, repr=False)

    @property
    def id(self) -> str:
        return f"{self.pipe}::{self.name}"


def is_test_file(data) -> bool:
    """A list of mappings each with a ``name``: what rtp's test files look like."""
    return (
        isinstance(data, list)
        and bool(data)
        and all(isinstance(c, dict) and "name" in c for c in data)
    )


def test_files(project: Project) -> list:
    """The tests folder's ``.yaml``, ``.yml`` and ``.test`` files (not its subfolders:
    the repository's own pytest suite may keep other projects there)."""
    folder = project.root / project.settings.tests_dir
    if not folder.is_dir():
        return []
    return sorted(
        p for p in folder.iterdir() if p.is_file() and p.suffix in (".yaml", ".yml", ".test")
    )


def load_cases(project: Project, problems: Problems) -> list[Case]:
    """Every case under the project's tests folder. Problems are located in their file
    and the case (or file) they concern is left out; the others are returned."""
    from rtp.testing import classic

    cases: list[Case] = []
    for path in test_files(project):
        rel = path.relative_to(project.root).as_posix()
        if path.suffix == ".test":
            cases.extend(classic.read_command_file(project, path, rel, problems))
            continue
        try:
            doc = load_yaml(path, rel)
        except RtpError as exc:
            if path.stem in project.pipes:
                problems.add(exc)
            continue
        if is_test_file(doc.data):
            cases.extend(_read_file(project, path.stem, doc, problems))
        elif classic.is_tinyunit_file(doc.data):
            cases.extend(classic.read_tinyunit_file(project, path.stem, doc, problems))
        elif classic.is_regression_file(doc.data):
            problems.add(
                SuiteError(
                    f"{rel} is a Tinybird regression-test configuration (`tb env "
                    "regression-tests`): it compares a branch with a live workspace's requests, "
                    "which rtp can't replay; the file is skipped",
                    code="RTP606",
                    location=doc.loc(()),
                    severity="warning",
                    hint="write the cases you need as tests/<pipe>.yaml",
                )
            )
    return cases


def warn_repeated(doc: Doc, i: int, name: str, names: set[str], problems: Problems) -> None:
    """Tinybird runs every case of a file, whatever its name: so does rtp, with a
    warning, since reports and ``-k`` then can't tell the two apart."""
    if name in names:
        problems.add(
            SuiteError(
                f"test '{name}' is defined twice in {doc.file}; both run",
                code="RTP605",
                location=doc.loc((i, "name")) if (i, "name") in doc.marks else doc.loc((i,)),
                severity="warning",
                hint="give each case its own name",
            )
        )
    names.add(name)


def _read_file(project: Project, pipe_name: str, doc: Doc, problems: Problems) -> list[Case]:
    pipe = project.pipes.get(pipe_name)
    if pipe is None or pipe.type != "endpoint":
        close = difflib.get_close_matches(pipe_name, [p.name for p in project.endpoints], n=1)
        what = "is not an endpoint pipe" if pipe else "names no pipe"
        problems.add(
            SuiteError(
                f"test file {doc.file} {what}: tests/<pipe>.yaml tests the endpoint <pipe>",
                code="RTP600",
                location=Location(doc.file),
                hint=f"did you mean tests/{close[0]}.yaml?" if close else None,
            )
        )
        return []
    out = []
    names: set[str] = set()
    for i, raw in enumerate(doc.data):
        case = _read_case(pipe_name, doc, i, raw, problems)
        if case is None:
            continue
        warn_repeated(doc, i, case.name, names, problems)
        out.append(case)
    return out


def _read_case(pipe: str, doc: Doc, i: int, raw: dict, problems: Problems) -> Case | None:
    before = len(problems)
    for key in raw:
        if key not in CASE_KEYS:
            close = difflib.get_close_matches(str(key), sorted(CASE_KEYS), n=1)
            problems.add(
                ProjectError(
                    f"unknown key '{key}' in test case",
                    code="RTP102",
                    location=doc.loc((i, key), key=True),
                    hint=f"did you mean '{close[0]}'?" if close else None,
                )
            )
    if not any(k in raw for k in EXPECTATIONS):
        problems.add(
            SuiteError(
                f"test '{raw.get('name')}' expects nothing",
                code="RTP604",
                location=doc.loc((i,)),
                hint="give it expected_result, expected_http_status, row_count, max_rows_read "
                "or max_elapsed_ms",
            )
        )
    case = Case(
        pipe=pipe,
        name=str(raw["name"]),
        file=doc.file,
        index=i,
        location=doc.loc((i, "name")),
        doc=doc,
    )
    case.parameters = _parameters(doc, i, raw.get("parameters"), problems)
    status = raw.get("expected_http_status")
    if isinstance(status, int) and status >= 400 and isinstance(raw.get("expected_result"), str):
        # Tinybird's error case: the text of the answer's "error"
        case.expected_error_text = raw["expected_result"]
    elif "expected_result" in raw:
        case.expected_result = _rows(doc, i, raw["expected_result"], problems)
    for key, attr, kind in (
        ("expected_http_status", "expected_status", int),
        ("row_count", "row_count", int),
        ("max_rows_read", "max_rows_read", int),
        ("max_elapsed_ms", "max_elapsed_ms", (int, float)),
        ("expected_error", "expected_error", str),
        ("ignore_order", "ignore_order", bool),
    ):
        if key not in raw:
            continue
        value = raw[key]
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            problems.add(
                ProjectError(
                    f"{key} must be {_kind_name(kind)}", code="RTP104", location=doc.loc((i, key))
                )
            )
            continue
        setattr(case, attr, value)
    return case if len(problems) == before else None


def _kind_name(kind) -> str:
    return {int: "a whole number", str: "text", bool: "true or false"}.get(kind, "a number")


def _parameters(doc: Doc, i: int, value, problems: Problems) -> dict:
    if value is None:
        return {}
    if isinstance(value, str):
        pairs = urllib.parse.parse_qsl(value.lstrip("?"), keep_blank_values=True)
        return dict(pairs)
    if isinstance(value, dict):
        return {str(k): _param_value(v) for k, v in value.items()}
    problems.add(
        ProjectError(
            'parameters must be a mapping or a query string like "a=1&b=2"',
            code="RTP104",
            location=doc.loc((i, "parameters")),
        )
    )
    return {}


def _param_value(value):
    if isinstance(value, list):
        return ",".join(str(v) for v in value)
    if isinstance(value, bool):
        return "true" if value else "false"
    return value


def _rows(doc: Doc, i: int, value, problems: Problems) -> list[dict] | None:
    if isinstance(value, list) and all(isinstance(r, dict) for r in value):
        return value
    if value is None or value == "":
        return []
    if not isinstance(value, str):
        problems.add(
            ProjectError(
                "expected_result must be NDJSON text or a list of rows",
                code="RTP104",
                location=doc.loc((i, "expected_result")),
            )
        )
        return None
    rows = []
    origin = doc.origin((i, "expected_result"))
    offset = 0
    for line in value.split("\n"):
        if line.strip():
            try:
                row = json.loads(line)
            except ValueError as exc:
                problems.add(
                    ProjectError(
                        f"expected_result row is not JSON: {exc.msg}",
                        code="RTP104",
                        location=origin.locate(value, offset + exc.pos),
                    )
                )
                return None
            if not isinstance(row, dict):
                problems.add(
                    ProjectError(
                        "each expected_result row must be a JSON object",
                        code="RTP104",
                        location=origin.locate(value, offset),
                    )
                )
                return None
            rows.append(row)
        offset += len(line) + 1
    return rows
