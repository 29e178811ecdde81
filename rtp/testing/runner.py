"""Run test cases: deploy into a fresh in-memory engine, load fixtures, call each endpoint
through the same code path as the HTTP API, and judge the answer."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from rtp.errors import Location, Problems, RtpError, SuiteError, http_status
from rtp.project.model import Project
from rtp.sql.compose import CompiledProject
from rtp.testing.cases import Case, load_cases
from rtp.testing.compare import diff_rows
from rtp.testing.fixtures import load_fixtures

if TYPE_CHECKING:
    from rtp.engine import Backend


@dataclass
class Outcome:
    case: Case
    seconds: float
    failures: list[str] = field(default_factory=list)
    status: int = 200
    error: str | None = None
    rows: list[dict] | None = None  # what the endpoint answered
    statistics: dict = field(default_factory=dict)
    text: str | None = None  # a .test command's output
    notes: list[str] = field(default_factory=list)  # passed, but worth saying

    @property
    def passed(self) -> bool:
        return not self.failures


@dataclass
class Session:
    """A project deployed into a fresh in-memory engine with its fixtures loaded."""

    project: Project
    compiled: CompiledProject
    backend: Backend
    fixtures: dict[str, int]
    setup_seconds: float
    copies: dict[str, int] = field(default_factory=dict)  # scheduled copy -> target rows

    def close(self) -> None:
        self.backend.close()


def select(cases: list[Case], pipes: list[str] | None, keyword: str | None) -> list[Case]:
    out = [c for c in cases if not pipes or c.pipe in pipes]
    if keyword:
        out = [c for c in out if keyword.lower() in c.id.lower()]
    return out


def prepare(compiled: CompiledProject, problems: Problems) -> list[Case]:
    """The cases that can run, with parameters checked against the endpoints'
    declarations (``compiled``: the project, built once by the caller). A bad case is
    added to ``problems`` (with its file and line) and left out."""
    project = compiled.project
    cases = load_cases(project, problems)
    out = []
    for case in cases:
        if case.kind == "endpoint" and case.pipe not in compiled.broken:
            params = compiled.params(case.pipe)
            unknown = [n for n in case.parameters if n not in params and n != "token"]
            for name in unknown:
                problems.add(
                    SuiteError(
                        f"test '{case.name}' sends '{name}', which {case.pipe} doesn't take",
                        code="RTP601",
                        location=_param_location(case, name),
                        hint="parameters: " + (", ".join(params) or "none"),
                    )
                )
            if unknown:
                continue
        out.append(case)
    return out


def _param_location(case: Case, name: str) -> Location:
    path = (case.index, "parameters", name)
    if path in case.doc.key_marks:
        return case.doc.loc(path, key=True)
    return case.doc.loc((case.index, "parameters"))


def start(compiled: CompiledProject) -> Session:
    """Deploy the project into a new in-memory engine and load its fixtures.

    Raises RtpError when the project can't be deployed or a fixture row doesn't fit.
    """
    from rtp.deploy import deploy
    from rtp.deploy.copy import run_scheduled
    from rtp.engine.embedded import EmbeddedBackend

    project = compiled.project
    started = time.perf_counter()
    backend = EmbeddedBackend(":memory:", database=f"rtp_test_{uuid.uuid4().hex[:12]}")
    try:
        deploy(project, backend, compiled=compiled)
        # Fixtures are timeless: a datasource's TTL must not delete them (a fixture written
        # in 2025 is past a 180-day TTL today, and a background merge drops its rows).
        for name, datasource in project.datasources.items():
            if datasource.ttl:
                backend.execute(f"SYSTEM STOP TTL MERGES `{backend.database}`.`{name}`")
        fixtures = {name: ok for name, (ok, _) in load_fixtures(project, backend).items()}
        try:
            copies = run_scheduled(compiled, backend)
        except RtpError as exc:  # the engine's error, or a deadline: say when it ran
            exc.message = f"{exc.message} (run after loading the fixtures)"
            raise
    except BaseException:
        backend.close()
        raise
    return Session(project, compiled, backend, fixtures, time.perf_counter() - started, copies)


def run_case(session: Session, case: Case) -> Outcome:
    from rtp.query import run_pipe

    started = time.perf_counter()
    outcome = Outcome(case, 0.0)
    try:
        if case.kind == "endpoint":
            body, _ = run_pipe(
                session.compiled, session.backend, case.pipe, case.parameters, "json"
            )
        elif case.kind == "command":
            if case.sql is None:
                body, _ = run_pipe(
                    session.compiled, session.backend, case.pipe, case.parameters, "csv"
                )
            else:
                body = query(session, case.sql, "csv")
            outcome.text = body.decode("utf-8")
        elif case.kind == "pipe_sql":
            body = query(
                session, case.sql or "SELECT * FROM _", "json", pipe=(case.pipe, case.parameters)
            )
        else:
            body = query(session, f"SELECT * FROM ({case.sql}) LIMIT 20", "json")
    except RtpError as exc:
        outcome.status = http_status(exc)
        outcome.error = exc.message
    else:
        if outcome.text is None:
            answer = json.loads(body)
            outcome.rows = answer.get("data", [])
            outcome.statistics = answer.get("statistics", {})
    outcome.seconds = time.perf_counter() - started
    outcome.failures = judge(case, outcome)
    return outcome


def query(session: Session, sql: str, fmt: str, pipe: tuple[str, dict] | None = None) -> bytes:
    """A test's own read-only SQL on the session's engine, as Tinybird's Query API runs
    it: a pipe's name reads that pipe's answer with its default parameters; with
    ``pipe`` (name, parameters), that pipe's answer to those parameters, also as ``_``
    (the ``q=`` of ``/v0/pipes/<name>.json``).

    Raises RequestError when the SQL is not one read-only statement, a pipe's
    parameters are wrong, or the engine refuses the query (its message, in full: the
    test's author wrote it).
    """
    from rtp.engine import QueryError
    from rtp.query import FORMATS, coerce_params, engine_refusal
    from rtp.sql.guard import guard_query

    compiled = session.compiled
    sql = guard_query(sql, admin=True).sql
    ctes = []
    given = {pipe[0]: pipe[1]} if pipe else {}
    for name in _pipes_named(sql, compiled):
        raw = given.get(name, {})
        values = coerce_params(compiled.params(name), raw)
        ctes.append(f"`{name}` AS ({compiled.compose(name, values).sql})")
    if pipe:
        if pipe[0] not in _pipes_named(sql, compiled):
            values = coerce_params(compiled.params(pipe[0]), pipe[1])
            ctes.append(f"`{pipe[0]}` AS ({compiled.compose(pipe[0], values).sql})")
        ctes.append(f"_ AS (SELECT * FROM `{pipe[0]}`)")
    if ctes:
        # a CTE is visible in the subqueries of its statement: the test's SQL runs as is
        sql = f"WITH {', '.join(ctes)}\nSELECT * FROM (\n{sql}\n)"
    try:
        return session.backend.query_bytes(sql, FORMATS[fmt][0])
    except QueryError as exc:
        raise engine_refusal(exc, reveal=True) from None


def _pipes_named(sql: str, compiled: CompiledProject) -> list[str]:
    """Pipes the statement reads by name (not shadowed by its own CTEs)."""
    import sqlglot
    from sqlglot import exp

    try:
        tree = sqlglot.parse_one(sql, read="clickhouse")
    except sqlglot.errors.ParseError:
        return []  # the engine will say what is wrong
    own = {cte.alias for cte in tree.find_all(exp.CTE)}
    names = []
    for table in tree.find_all(exp.Table):
        if (
            not table.db
            and table.name in compiled.pipes
            and table.name not in own
            and table.name not in compiled.project.datasources
            and table.name not in names
        ):
            names.append(table.name)
    return names


def judge(case: Case, outcome: Outcome) -> list[str]:
    if case.kind == "command":
        return _judge_text(case, outcome)
    if case.kind in ("sql", "pipe_sql"):
        return _judge_quality(case, outcome)
    expected_status = case.expected_status or 200
    if outcome.status != expected_status:
        got = f"{outcome.status}" + (f" ({outcome.error})" if outcome.error else "")
        return [f"expected HTTP {expected_status}, got {got}"]
    failures = []
    if case.expected_error and case.expected_error not in (outcome.error or ""):
        failures.append(
            f"expected an error containing {case.expected_error!r}, got {outcome.error!r}"
        )
    if case.expected_error_text is not None and _words(case.expected_error_text) != _words(
        outcome.error or ""
    ):
        failures.append(
            f"expected the error {_words(case.expected_error_text)!r}, got {outcome.error!r}"
        )
    if outcome.rows is None:
        return failures
    if case.expected_result is not None:
        failures += diff_rows(case.expected_result, outcome.rows, ignore_order=case.ignore_order)
    if case.row_count is not None and len(outcome.rows) != case.row_count:
        failures.append(f"expected {case.row_count} rows, got {len(outcome.rows)}")
    rows_read = outcome.statistics.get("rows_read")
    if case.max_rows_read is not None and rows_read is not None and rows_read > case.max_rows_read:
        failures.append(f"read {rows_read} rows, more than max_rows_read {case.max_rows_read}")
    if case.max_elapsed_ms is not None:
        elapsed_ms = outcome.statistics.get("elapsed", outcome.seconds) * 1000
        if elapsed_ms > case.max_elapsed_ms:
            failures.append(
                f"took {elapsed_ms:.1f} ms, more than max_elapsed_ms {case.max_elapsed_ms}"
            )
    return failures


def _words(text: str) -> str:
    return " ".join(text.split())


def _judge_quality(case: Case, outcome: Outcome) -> list[str]:
    """Tinybird's data-quality verdict: the query's rows are failures; over max_time or
    max_bytes_read the test still passes, with a note."""
    if outcome.error is not None:
        return [f"the query failed: {outcome.error}"]
    if outcome.rows:
        shown = [f"  {json.dumps(r, ensure_ascii=False, default=str)}" for r in outcome.rows[:5]]
        more = len(outcome.rows) - len(shown)
        return [
            f"the query returned {len(outcome.rows)} row(s); a data-quality test "
            "passes when it returns none:",
            *shown,
            *([f"  ... and {more} more"] if more else []),
        ]
    elapsed = outcome.statistics.get("elapsed", outcome.seconds)
    read = outcome.statistics.get("bytes_read")
    if case.max_time is not None and elapsed > case.max_time:
        outcome.notes.append(f"passed over time: {elapsed:.4f} s > max_time {case.max_time}")
    if case.max_bytes_read is not None and read is not None and read > case.max_bytes_read:
        outcome.notes.append(
            f"passed over bytes: read {read} > max_bytes_read {case.max_bytes_read}"
        )
    return []


def _judge_text(case: Case, outcome: Outcome) -> list[str]:
    """The command's output against the .result file, blank lines ignored (``diff -B``)."""
    if outcome.error is not None:
        return [f"the command failed: {outcome.error}"]
    expected = [line for line in (case.expected_text or "").splitlines() if line.strip()]
    got = [line for line in (outcome.text or "").splitlines() if line.strip()]
    if expected == got:
        return []
    import difflib

    diff = list(difflib.unified_diff(expected, got, "expected", "got", lineterm="", n=1))
    return [
        "the output differs from the .result file:",
        *diff[2:22],
        *(["..."] if len(diff) > 22 else []),
    ]


def run(
    compiled: CompiledProject, cases: list[Case], on_result: Callable[[Outcome], None] | None = None
) -> tuple[Session, list[Outcome]]:
    """Run ``cases`` in one session; ``on_result`` sees each outcome as it comes."""
    session = start(compiled)
    outcomes = []
    try:
        for case in cases:
            outcome = run_case(session, case)
            outcomes.append(outcome)
            if on_result:
                on_result(outcome)
    finally:
        session.close()
    return session, outcomes
