"""Golden files: composed SQL and DDL for given inputs.

Each ``tests/golden/<kind>/<case>.yaml`` holds an input and the expected output. Set
``RTP_UPDATE_GOLDEN=1`` to rewrite the expectations on purpose, then review the diff.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

from rtp.errors import Problems
from rtp.project.load import load_project
from rtp.sql.ddl import create_table
from tests.conftest import MINIMAL

GOLDEN = Path(__file__).parent / "golden"
UPDATE = os.environ.get("RTP_UPDATE_GOLDEN") == "1"


class _Dumper(yaml.SafeDumper):
    """Multi-line text as block scalars, so golden files read like the SQL they hold."""


_Dumper.add_representer(
    str,
    lambda d, s: d.represent_scalar("tag:yaml.org,2002:str", s, style="|" if "\n" in s else None),
)


def cases(kind: str):
    return sorted((GOLDEN / kind).glob("*.yaml"))


def compare(path: Path, case: dict, actual: str) -> None:
    if UPDATE:
        case["expected"] = actual
        path.write_text(yaml.dump(case, Dumper=_Dumper, sort_keys=False, allow_unicode=True))
        return
    assert actual == case["expected"], f"{path.name}: rerun with RTP_UPDATE_GOLDEN=1 if intended"


def _project(project_factory, case: dict):
    files = {f"pipes/{name}.yaml": text for name, text in (case.get("pipes") or {}).items()}
    files.update({f"datasources/{n}.yaml": t for n, t in (case.get("datasources") or {}).items()})
    root = project_factory(files, base=MINIMAL)
    model, problems = load_project(root)
    assert not problems.errors, [str(p) for p in problems.errors]
    return model


@pytest.mark.parametrize("path", cases("compose"), ids=lambda p: p.stem)
def test_compose(path, project_factory):
    from rtp.sql.compose import compile_project

    case = yaml.safe_load(path.read_text())
    model = _project(project_factory, case)
    problems = Problems()
    compiled = compile_project(model, problems)
    assert not problems.errors, [str(p) for p in problems.errors]
    pipe = case["pipe"]
    params = compiled.params(pipe)
    values = {k: v for k, v in (case.get("values") or {}).items()}
    from rtp.sql.params import coerce

    values = {k: coerce(params[k], v) if k in params else v for k, v in values.items()}
    compare(path, case, compiled.compose(pipe, values).sql + "\n")


@pytest.mark.parametrize("path", cases("ddl"), ids=lambda p: p.stem)
def test_ddl(path, project_factory):
    case = yaml.safe_load(path.read_text())
    model = _project(project_factory, case)
    compare(path, case, create_table(model.datasources[case["datasource"]], "shop") + "\n")
