"""Tinybird Classic's test files, read as they are.

Data-quality tests (``tb test init``/``tb test run``), ``tests/<any>.yaml``::

    - no_negative_hits:             # the test's name
        sql: SELECT * FROM hits WHERE hits < 0
        max_time: null              # seconds; over it the test passes "over time"
        max_bytes_read: null        # bytes; over it the test passes "over bytes"
    - per_project:
        sql: SELECT * FROM hits_from HAVING hits <= 0
        pipe: {name: hits_from, params: {project: add_sinks}}

A test passes when its query returns no rows (Tinybird runs ``SELECT * FROM (sql) LIMIT
20`` through its Query API, where a pipe's name reads the pipe's result with its default
parameters). With ``pipe``, ``sql`` runs over that pipe's result called with ``params``
(Tinybird's ``q=``: the pipe's name, or ``_``, is its result); without ``sql`` the pipe's
own rows must be none.

Fixture tests, ``tests/<name>.test`` (one ``tb`` command line, run by the project's
``scripts/exec_test.sh``) and ``tests/<name>.test.result`` (its expected output, compared
as ``diff -B`` does: blank lines don't count)::

    tb pipe data top_browsers --date_from 2024-01-11 --browser chrome --format CSV
    tb sql "SELECT count() AS c FROM analytics_events" --format CSV

Only ``--format CSV`` is read: without it ``tb`` prints a table drawn for a terminal,
which rtp does not imitate; such a file is refused (RTP606) and the others run.
Regression-test configurations (``- pipe: '.*'`` / ``tests: [coverage: ...]``) compare a
branch with a live workspace and are refused the same way.
"""

from __future__ import annotations

import shlex
from pathlib import Path

from rtp.errors import Location, Problems, ProjectError, SuiteError
from rtp.project.model import Project
from rtp.project.source import Doc
from rtp.testing.cases import Case, warn_repeated

TINYUNIT_KEYS = {"sql", "max_time", "max_bytes_read", "pipe"}


def is_tinyunit_file(data) -> bool:
    """A list of one-key mappings ``{<name>: {sql: ..., ...}}``."""
    return (
        isinstance(data, list)
        and bool(data)
        and all(
            isinstance(c, dict)
            and len(c) == 1
            and "name" not in c
            and (next(iter(c.values())) is None or isinstance(next(iter(c.values())), dict))
            for c in data
        )
    )


def is_regression_file(data) -> bool:
    """``tb env regression-tests`` configuration: ``- pipe: <regex>`` with ``tests``."""
    return (
        isinstance(data, list)
        and bool(data)
        and all(isinstance(c, dict) and "pipe" in c and "tests" in c for c in data)
    )


def read_tinyunit_file(project: Project, stem: str, doc: Doc, problems: Problems) -> list[Case]:
    out: list[Case] = []
    names: set[str] = set()
    for i, item in enumerate(doc.data):
        name, props = next(iter(item.items()))
        name = str(name)
        props = props or {}
        before = len(problems.errors)
        for key in props:
            if key not in TINYUNIT_KEYS:
                problems.add(
                    ProjectError(
                        f"unknown key '{key}' in test '{name}'",
                        code="RTP102",
                        location=doc.loc((i, name, key), key=True),
                        hint="a data-quality test takes sql, pipe, max_time, max_bytes_read",
                    )
                )
        sql, pipe = props.get("sql"), props.get("pipe")
        if sql is not None and not isinstance(sql, str):
            problems.add(
                ProjectError("sql must be text", code="RTP104", location=doc.loc((i, name, "sql")))
            )
        case = Case(
            pipe=stem,
            name=name,
            file=doc.file,
            index=i,
            location=doc.loc((i, name), key=True),
            doc=doc,
            kind="sql",
            sql=sql if isinstance(sql, str) else None,
        )
        if pipe is not None:
            if not isinstance(pipe, dict) or not pipe.get("name"):
                problems.add(
                    ProjectError(
                        "pipe must be a mapping with a name (and params)",
                        code="RTP104",
                        location=doc.loc((i, name, "pipe")),
                    )
                )
            else:
                params = pipe.get("params") or {}
                if not isinstance(params, dict):
                    problems.add(
                        ProjectError(
                            "pipe params must be a mapping",
                            code="RTP104",
                            location=doc.loc((i, name, "pipe", "params")),
                        )
                    )
                    params = {}
                case.pipe = str(pipe["name"])
                case.kind = "pipe_sql"  # sql (if any) over the pipe's answer
                case.parameters = {str(k): _text(v) for k, v in params.items()}
                if case.pipe not in project.pipes or project.pipes[case.pipe].type != "endpoint":
                    problems.add(
                        SuiteError(
                            f"test '{name}' calls '{case.pipe}', which is no endpoint pipe",
                            code="RTP600",
                            location=doc.loc((i, name, "pipe", "name")),
                        )
                    )
        if case.sql is None and case.kind == "sql":
            problems.add(
                SuiteError(
                    f"test '{name}' has neither sql nor pipe",
                    code="RTP604",
                    location=doc.loc((i, name), key=True),
                    hint="give it sql: a query whose rows are the failures",
                )
            )
        for key, attr in (("max_time", "max_time"), ("max_bytes_read", "max_bytes_read")):
            value = props.get(key)
            if value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, int | float):
                problems.add(
                    ProjectError(
                        f"{key} must be a number or null",
                        code="RTP104",
                        location=doc.loc((i, name, key)),
                    )
                )
                continue
            setattr(case, attr, value)
        if len(problems.errors) > before:
            continue
        warn_repeated(doc, i, name, names, problems)
        out.append(case)
    return out


def _text(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ",".join(str(v) for v in value)
    return str(value)


def read_command_file(project: Project, path: Path, rel: str, problems: Problems) -> list[Case]:
    """The one case of a ``.test`` file, or none (with a problem) when rtp can't run it
    as ``tb`` would."""
    text = path.read_text(encoding="utf-8")
    lines = [
        (n, line)
        for n, line in enumerate(text.splitlines(), 1)
        if line.strip() and not line.lstrip().startswith("#")
    ]
    where = Location(rel, lines[0][0] if lines else 0, 1)

    def refuse(message: str, hint: str | None = None, code: str = "RTP606") -> list[Case]:
        problems.add(SuiteError(message, code=code, location=where, hint=hint))
        return []

    if len(lines) != 1:
        return refuse(
            "a .test file holds one `tb pipe data` or `tb sql` command line; "
            f"this one has {len(lines)}"
        )
    try:
        argv = shlex.split(lines[0][1])
    except ValueError as exc:
        return refuse(f"the command line can't be read as the shell would: {exc}")
    if any(a in ("|", "&&", "||", ";", ">", "<") for a in argv) or argv[:1] != ["tb"]:
        return refuse(
            "rtp runs a .test file's `tb pipe data` or `tb sql` command, not other shell commands"
        )
    result = path.with_name(path.name + ".result")
    if not result.is_file():
        return refuse(f"{rel} has no {result.name} holding the expected output", code="RTP604")
    case = Case(
        pipe=path.stem,
        name=path.stem,
        file=rel,
        index=0,
        location=where,
        kind="command",
        expected_text=result.read_text(encoding="utf-8"),
    )
    args, fmt = argv[1:], None
    rest: list[str] = []
    i = 0
    while i < len(args):
        arg = args[i]
        if arg.startswith("--"):
            key, eq, value = arg[2:].partition("=")
            if not eq:
                if i + 1 >= len(args) or args[i + 1].startswith("--"):
                    return refuse(f"option --{key} has no value")
                value = args[i + 1]
                i += 1
            if key == "format":
                fmt = value.lower()
            else:
                case.parameters[key] = value
        else:
            rest.append(arg)
        i += 1
    if fmt != "csv":
        return refuse(
            "the .test expects tb's output "
            + ("drawn as a table for a terminal" if fmt is None else f"in format {fmt}")
            + ", which rtp does not imitate; rtp compares `--format CSV` output",
            hint="add --format CSV to the command and write the CSV in the .result file",
        )
    if rest[:2] == ["pipe", "data"] and len(rest) == 3:
        case.pipe = rest[2]
        if "query" in case.parameters:
            return refuse("`tb pipe data --query` is not run by rtp")
        if case.pipe not in project.pipes or project.pipes[case.pipe].type != "endpoint":
            return refuse(f"`tb pipe data {case.pipe}` names no endpoint pipe", code="RTP600")
    elif rest[:1] == ["sql"] and len(rest) == 2 and not case.parameters:
        case.sql = rest[1]
    else:
        return refuse(
            "rtp runs `tb pipe data <pipe> [--param value ...] --format CSV` and "
            '`tb sql "<query>" --format CSV`; this is `' + " ".join(argv) + "`"
        )
    return [case]
