"""Load the fixtures into an in-memory engine and print what each endpoint answers.

    python3 examples/run_fixtures.py                       # every test case in tests/<pipe>.yaml
    python3 examples/run_fixtures.py trending at="2026-11-20 12:00:00" window_minutes=30

Creates the project's tables and materialized views in embedded ClickHouse (chDB), inserts
fixtures/*.ndjson (datasources the views read last, so the views see every row), then
composes and runs endpoints. With no arguments it runs every case of the project's test
files and compares with `expected_result`, a quick way to work out and check expected
results before `rtp test` exists everywhere.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from urllib.parse import parse_qsl

import yaml

from rtp.engine.embedded import EmbeddedBackend
from rtp.sql.ddl import create_materialized_view, create_table
from rtp.errors import RtpError
from rtp.project.load import load_project
from rtp.sql.compose import compile_project
from rtp.sql.params import coerce

ROOT = Path(__file__).resolve().parent.parent


def load(root: Path = ROOT):
    project, problems = load_project(root)
    compiled = compile_project(project, problems)
    backend = EmbeddedBackend(":memory:", database="fixtures")
    for ds in project.datasources.values():
        backend.execute(create_table(ds))
    for pipe in project.pipes.values():
        if pipe.type == "materialized":
            sql = compiled.compose(pipe.name, compiled.sample_values(pipe.name)).sql
            backend.execute(create_materialized_view(f"{pipe.name}_view", pipe.target, sql))
    for path in sorted((root / project.settings.fixtures_dir).glob("*.ndjson")):
        rows = path.read_text()
        backend.execute(f"INSERT INTO `{path.stem}` FORMAT JSONEachRow\n{rows}")
    return project, compiled, backend


def run(compiled, backend, pipe: str, raw: dict) -> list[dict]:
    """Rows the endpoint returns for ``raw`` parameters; raises RtpError on bad input."""
    params = compiled.params(pipe)
    values = {}
    for name, value in raw.items():
        values[name] = coerce(params[name], value) if name in params else value
    sql = compiled.compose(pipe, values).sql
    names, rows = backend.query(sql)
    return [dict(zip([n for n, _ in names], row, strict=True)) for row in rows]


def _cases(root: Path, pipe: str):
    path = root / "tests" / f"{pipe}.yaml"
    return yaml.safe_load(path.read_text()) if path.is_file() else []


def _params(case) -> dict:
    p = case.get("parameters") or {}
    return dict(parse_qsl(p, keep_blank_values=True)) if isinstance(p, str) else dict(p)


def main(argv: list[str]) -> int:
    project, compiled, backend = load()
    if argv:
        pipe, raw = argv[0], dict(a.split("=", 1) for a in argv[1:])
        for row in run(compiled, backend, pipe, raw):
            print(json.dumps(row))
        return 0
    failures = 0
    for pipe in sorted(p.name for p in project.endpoints):
        for case in _cases(ROOT, pipe):
            try:
                rows = run(compiled, backend, pipe, _params(case))
                status = 200
            except RtpError as exc:
                rows, status = [], getattr(exc, "status", 400)
            want_status = case.get("expected_http_status", 200)
            expected = [
                json.loads(x) for x in (case.get("expected_result") or "").splitlines() if x.strip()
            ]
            ok = status == want_status and (status != 200 or rows == expected)
            failures += not ok
            print(f"{'ok  ' if ok else 'FAIL'} {pipe}: {case['name']} ({status})")
            if not ok:
                for row in rows:
                    print("     got", json.dumps(row))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
