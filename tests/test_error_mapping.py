"""One mapping from a code's family to class, HTTP status and exit code (rtp/errors.py,
docs/errors.md): pinned here, enforced at construction, and checked at every raise site
of rtp/ by reading the source, so a code raised by the wrong family fails CI."""

from __future__ import annotations

import ast

import pytest

import rtp.errors as errors
from rtp.errors import (
    CODES,
    RETIRED,
    EngineError,
    ProjectError,
    RequestError,
    RtpError,
    SchemaError,
    SqlError,
    SuiteError,
    TemplateRaisedError,
    error_for,
    exit_code,
    http_status,
)
from tests.conftest import ROOT

# code -> (class, HTTP status, exit code). Changing a line here is changing what callers
# and scripts see: say so in docs/errors.md.
PINNED = {
    "RTP100": (ProjectError, 500, 2),
    "RTP101": (ProjectError, 500, 2),
    "RTP102": (ProjectError, 500, 2),
    "RTP103": (ProjectError, 500, 2),
    "RTP104": (ProjectError, 500, 2),
    "RTP105": (ProjectError, 500, 2),
    "RTP106": (ProjectError, 500, 2),
    "RTP107": (ProjectError, 500, 2),
    "RTP108": (ProjectError, 500, 2),
    "RTP109": (ProjectError, 400, 2),
    "RTP110": (ProjectError, 500, 2),
    "RTP111": (ProjectError, 500, 2),
    "RTP200": (SchemaError, 500, 2),
    "RTP201": (SchemaError, 500, 2),
    "RTP202": (SchemaError, 500, 2),
    "RTP203": (SchemaError, 500, 2),
    "RTP204": (SchemaError, 500, 2),
    "RTP205": (SchemaError, 500, 2),
    "RTP300": (SqlError, 400, 2),
    "RTP301": (SqlError, 400, 2),
    "RTP302": (SqlError, 400, 2),
    "RTP303": (SqlError, 400, 2),
    "RTP304": (SqlError, 400, 2),
    "RTP305": (SqlError, 400, 2),
    "RTP306": (SqlError, 400, 2),
    "RTP310": (SqlError, 400, 2),
    "RTP311": (SqlError, 400, 2),
    "RTP312": (SqlError, 400, 2),
    "RTP400": (RequestError, 400, 2),
    "RTP401": (RequestError, 400, 2),
    "RTP402": (RequestError, 400, 2),
    "RTP403": (RequestError, 403, 2),
    "RTP404": (RequestError, 404, 2),
    "RTP405": (RequestError, 413, 2),
    "RTP406": (RequestError, 429, 2),
    "RTP407": (RequestError, 400, 2),
    "RTP408": (RequestError, 400, 2),
    "RTP410": (RequestError, 400, 2),
    "RTP411": (RequestError, 400, 2),
    "RTP412": (RequestError, 415, 2),
    "RTP413": (RequestError, 499, 2),
    "RTP600": (SuiteError, 500, 2),
    "RTP601": (SuiteError, 500, 2),
    "RTP602": (SuiteError, 500, 2),
    "RTP603": (SuiteError, 500, 2),
    "RTP604": (SuiteError, 500, 2),
    "RTP605": (SuiteError, 500, 2),
    "RTP606": (SuiteError, 500, 2),
    "RTP500": (EngineError, 500, 1),
    "RTP501": (EngineError, 503, 1),
    "RTP502": (EngineError, 500, 1),
    "RTP503": (EngineError, 500, 1),
    "RTP504": (EngineError, 409, 1),
    "RTP507": (EngineError, 408, 1),
    "RTP508": (EngineError, 503, 1),
    "RTP509": (EngineError, 409, 1),
    "RTP510": (EngineError, 500, 1),
    "RTP511": (EngineError, 501, 1),
    "RTP512": (EngineError, 500, 1),
    "RTP513": (EngineError, 500, 1),
    "RTP515": (EngineError, 409, 1),
    "RTP516": (EngineError, 409, 1),
    "RTP517": (EngineError, 409, 1),
    "RTP518": (EngineError, 501, 1),
}


def test_every_code_has_a_family_class_status_and_exit():
    assert set(PINNED) | set(RETIRED) == set(CODES)
    for code in CODES:
        if code in RETIRED:
            continue
        cls, status, exit_ = PINNED[code]
        error = cls("x", code=code)
        assert (type(error), http_status(error), exit_code(error)) == (cls, status, exit_)


def test_family_table_is_the_documented_one():
    rows = {d: (f.cls, f.status, f.exit) for d, f in errors.FAMILIES.items()}
    assert rows == {
        "1": (ProjectError, 500, 2),
        "2": (SchemaError, 500, 2),
        "3": (SqlError, 400, 2),
        "4": (RequestError, 400, 2),
        "5": (EngineError, 500, 1),
        "6": (SuiteError, 500, 2),
    }
    text = (ROOT / "docs" / "errors.md").read_text()
    for digit, (cls, status, exit_) in rows.items():
        assert f"| RTP{digit}xx" in text
        line = next(x for x in text.splitlines() if x.startswith(f"| RTP{digit}xx"))
        assert f"`{cls.__name__}`" in line and line.endswith(f"| {status} | {exit_} |")
    for code, status in errors.HTTP_STATUS.items():
        assert f"{code} → {status}" in text


def test_retired_codes_stay_documented_and_point_at_their_family():
    for old, new in RETIRED.items():
        assert CODES[old].startswith("retired:") and CODES[old].endswith(f"now {new}")
        assert new in CODES and new not in RETIRED
        with pytest.raises(ValueError, match="retired"):
            errors.family(old).cls("x", code=old)
        assert error_for(old, "x").code == new  # read back from an older server


@pytest.mark.parametrize(
    "cls, code",
    [
        (RequestError, "RTP304"),  # SQL the engine refused is a pipe's (SqlError)
        (SchemaError, "RTP103"),
        (ProjectError, "RTP600"),  # tests are SuiteErrors
        (ProjectError, "RTP411"),
        (EngineError, "RTP400"),
        (RequestError, "RTP511"),
        (SqlError, "RTP500"),
        (RtpError, "RTP100"),  # the root carries no code of its own
        (ProjectError, "RTP999"),
    ],
)
def test_constructing_a_mismatch_raises(cls, code):
    with pytest.raises(ValueError):
        cls("x", code=code)


def test_only_the_template_chooses_a_status():
    assert http_status(TemplateRaisedError("nope", status=418)) == 418
    assert http_status(RequestError("x", code="RTP402")) == 400
    with pytest.raises(TypeError):
        RequestError("x", code="RTP403", status=500)


def _error_classes() -> dict[str, type]:
    """Every RtpError subclass of rtp.errors plus those defined in rtp/ (by name)."""
    found = {
        n: c for n, c in vars(errors).items() if isinstance(c, type) and issubclass(c, RtpError)
    }
    trees = {p: ast.parse(p.read_text(encoding="utf-8")) for p in (ROOT / "rtp").rglob("*.py")}
    grew = True
    while grew:
        grew = False
        for tree in trees.values():
            for node in ast.walk(tree):
                if isinstance(node, ast.ClassDef) and node.name not in found:
                    bases = [b.id for b in node.bases if isinstance(b, ast.Name)]
                    known = [found[b] for b in bases if b in found]
                    if known:
                        found[node.name] = type(node.name, tuple(known), {})
                        grew = True
    return found


def _call_name(call: ast.Call) -> str | None:
    f = call.func
    return f.id if isinstance(f, ast.Name) else f.attr if isinstance(f, ast.Attribute) else None


def test_no_raise_site_passes_a_code_of_another_family():
    classes = _error_classes()
    wrong = []
    for path in sorted((ROOT / "rtp").rglob("*.py")):
        rel = path.relative_to(ROOT)
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ClassDef) and node.name in classes:
                for stmt in node.body:  # class-level `code = "RTPnnn"`
                    if (
                        isinstance(stmt, ast.Assign)
                        and isinstance(stmt.value, ast.Constant)
                        and [getattr(t, "id", None) for t in stmt.targets] == ["code"]
                        and stmt.value.value != "RTP000"
                    ):
                        code = stmt.value.value
                        home = errors.family(code).cls
                        if code in RETIRED or not issubclass(classes[node.name], home):
                            wrong.append(f"{rel}:{stmt.lineno}: class {node.name} {code}")
            if not isinstance(node, ast.Call):
                continue
            name = _call_name(node)
            kw = {k.arg: k.value for k in node.keywords}
            code = kw.get("code")
            literal = isinstance(code, ast.Constant) and isinstance(code.value, str)
            where = f"{rel}:{node.lineno}: {name}"
            # any call passing code="RTPnnn" (helpers too): registered and not retired
            if (
                literal
                and code.value.startswith("RTP")
                and (code.value not in CODES or code.value in RETIRED)
            ):
                wrong.append(f"{where} {code.value}: unregistered or retired")
                continue
            if name not in classes:
                continue
            if literal and not issubclass(classes[name], errors.family(code.value).cls):
                wrong.append(
                    f"{where} {code.value}: a {errors.family(code.value).cls.__name__} code"
                )
            if "status" in kw and not issubclass(classes[name], TemplateRaisedError):
                wrong.append(f"{where} status=: the status comes from the code")
    assert wrong == []


def test_the_scan_catches_drift(tmp_path):
    """The scan above is not vacuous: it sees the calls it must judge."""
    classes = _error_classes()
    assert {"TemplateError", "QueryError", "SuiteError"} <= set(classes)
    src = (ROOT / "rtp" / "server" / "events.py").read_text(encoding="utf-8")
    calls = [
        n
        for n in ast.walk(ast.parse(src))
        if isinstance(n, ast.Call) and _call_name(n) == "EngineError"
    ]
    assert any(k.arg == "code" and k.value.value == "RTP511" for c in calls for k in c.keywords)


# -- the CLI: one exit code per family --------------------------------------------------

BROKEN = {
    "pipes/by_user.yaml": """
    nodes:
      - name: a
        sql: SELECT nope FROM missing_table
"""
}


# a file rtp can't load (RTP102 unknown key)
UNLOADABLE = {
    "datasources/events.yaml": """
    colums:
      - {name: user_id, type: String}
"""
}


def test_dev_and_deploy_on_a_broken_project_exit_2(project_factory, cli):
    root = project_factory(BROKEN)
    # SQL naming an unknown table (found compiling): was exit 1 under `rtp dev`
    result = cli("dev", "-p", root, "--port", "1")
    assert result.exit_code == 2, result.output
    assert "RTP302" in result.output
    root = project_factory(UNLOADABLE)
    for command in ("dev", "deploy"):
        result = cli(command, "-p", root)
        assert result.exit_code == 2, result.output
        assert "RTP102" in result.output


def test_dev_without_a_project_exits_2(tmp_path, cli):
    result = cli("dev", "-p", tmp_path / "nothing-here")
    assert result.exit_code == 2


def test_engine_failure_exits_1(project_factory, cli):
    root = project_factory()
    result = cli("deploy", "-p", root, "--target", "clickhouse://u@127.0.0.1:1/db")
    assert result.exit_code == 1 and "RTP501" in result.output
    result = cli("sql", "SELECT nope_no_such_function()", "-p", root)
    assert result.exit_code == 1 and "RTP500" in result.output


def test_usage_errors_exit_2(project_factory, cli):
    root = project_factory()
    result = cli("deploy", "-p", root, "--target", "prod")
    assert result.exit_code == 2 and "RTP110 unknown target 'prod'" in result.output
    result = cli("append", "events", root / "data.xlsx", "-p", root)
    assert result.exit_code == 2 and "RTP411" in result.output


def test_check_and_test_finding_problems_still_exit_1(project_factory, cli):
    root = project_factory(BROKEN)
    result = cli("check", "-p", root)
    assert result.exit_code == 1 and "RTP302" in result.output
