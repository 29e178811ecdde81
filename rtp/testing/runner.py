"""Run test cases: deploy into a fresh in-memory engine, load fixtures, call each endpoint
through the same code path as the HTTP API, and judge the answer."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

from rtp.errors import Location, Problems, ProjectError, RtpError, http_status
from rtp.project.model import Project
from rtp.sql.compose import CompiledProject, compile_project
from rtp.testing.cases import Case, load_cases
from rtp.testing.compare import diff_rows
from rtp.testing.fixtures import load_fixtures


@dataclass
class Outcome:
    case: Case
    seconds: float
    failures: list[str] = field(default_factory=list)
    status: int = 200
    error: str | None = None
    rows: list[dict] | None = None  # what the endpoint answered
    statistics: dict = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return not self.failures


@dataclass
class Session:
    """A project deployed into a fresh in-memory engine with its fixtures loaded."""

    project: Project
    compiled: CompiledProject
    backend: object
    fixtures: dict[str, int]
    setup_seconds: float

    def close(self) -> None:
        self.backend.close()


def select(cases: list[Case], pipes: list[str] | None, keyword: str | None) -> list[Case]:
    out = [c for c in cases if not pipes or c.pipe in pipes]
    if keyword:
        out = [c for c in out if keyword.lower() in c.id.lower()]
    return out


def prepare(project: Project, problems: Problems) -> tuple[list[Case], CompiledProject]:
    """Every case, with parameters checked against the endpoints' declarations, and the
    compiled project (``run`` serves the cases from it)."""
    cases = load_cases(project, problems)
    compiled = compile_project(project, Problems())
    for case in cases:
        if case.pipe in compiled.broken:
            continue
        params = compiled.params(case.pipe)
        for name in case.parameters:
            if name not in params and name != "token":
                problems.add(ProjectError(
                    f"test '{case.name}' sends '{name}', which {case.pipe} doesn't take",
                    code="RTP601", location=_param_location(case, name),
                    hint="parameters: " + (", ".join(params) or "none")))
    return cases, compiled


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
    from rtp.engine.embedded import EmbeddedBackend

    project = compiled.project
    started = time.perf_counter()
    backend = EmbeddedBackend(":memory:", database=f"rtp_test_{uuid.uuid4().hex[:12]}")
    try:
        deploy(project, backend)
        fixtures = {name: ok for name, (ok, _) in load_fixtures(project, backend).items()}
    except BaseException:
        backend.close()
        raise
    return Session(project, compiled, backend, fixtures, time.perf_counter() - started)


def run_case(session: Session, case: Case) -> Outcome:
    from rtp.server.query import run_pipe

    started = time.perf_counter()
    outcome = Outcome(case, 0.0)
    try:
        body, _ = run_pipe(session.compiled, session.backend, case.pipe, case.parameters,
                           "json")
    except RtpError as exc:
        outcome.status = http_status(exc)
        outcome.error = exc.message
    else:
        answer = json.loads(body)
        outcome.rows = answer.get("data", [])
        outcome.statistics = answer.get("statistics", {})
    outcome.seconds = time.perf_counter() - started
    outcome.failures = judge(case, outcome)
    return outcome


def judge(case: Case, outcome: Outcome) -> list[str]:
    expected_status = case.expected_status or 200
    if outcome.status != expected_status:
        got = f"{outcome.status}" + (f" ({outcome.error})" if outcome.error else "")
        return [f"expected HTTP {expected_status}, got {got}"]
    failures = []
    if case.expected_error and case.expected_error not in (outcome.error or ""):
        failures.append(f"expected an error containing {case.expected_error!r}, "
                        f"got {outcome.error!r}")
    if outcome.rows is None:
        return failures
    if case.expected_result is not None:
        failures += diff_rows(case.expected_result, outcome.rows,
                              ignore_order=case.ignore_order)
    if case.row_count is not None and len(outcome.rows) != case.row_count:
        failures.append(f"expected {case.row_count} rows, got {len(outcome.rows)}")
    rows_read = outcome.statistics.get("rows_read")
    if case.max_rows_read is not None and rows_read is not None \
            and rows_read > case.max_rows_read:
        failures.append(f"read {rows_read} rows, more than max_rows_read {case.max_rows_read}")
    if case.max_elapsed_ms is not None:
        elapsed_ms = outcome.statistics.get("elapsed", outcome.seconds) * 1000
        if elapsed_ms > case.max_elapsed_ms:
            failures.append(f"took {elapsed_ms:.1f} ms, more than max_elapsed_ms "
                            f"{case.max_elapsed_ms}")
    return failures


def run(compiled: CompiledProject, cases: list[Case],
        on_result: Callable[[Outcome], None] | None = None) -> tuple[Session, list[Outcome]]:
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
