"""The published JSON Schemas (schemas/*.schema.json): generated from the models that
validate the files, accepted by every real project file, given to editors by `rtp init`."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
import yaml

from tests.conftest import ROOT

KINDS = {"project": "rtp.yaml", "datasource": "datasources", "pipe": "pipes"}


def _validator(kind: str) -> jsonschema.Draft202012Validator:
    schema = json.loads((ROOT / "schemas" / f"{kind}.schema.json").read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def _files(root: Path):
    yield "project", root / "rtp.yaml"
    for kind in ("datasource", "pipe"):
        yield from ((kind, p) for p in sorted((root / f"{kind}s").glob("*.yaml")))


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_committed_schema_is_what_rtp_schema_prints(cli, kind):
    result = cli("schema", kind)
    assert result.exit_code == 0
    committed = (ROOT / "schemas" / f"{kind}.schema.json").read_text()
    assert result.stdout == committed, f"regenerate: rtp schema {kind} > schemas/{kind}.schema.json"


def test_every_file_of_the_root_project_and_the_scaffold_validates(tmp_path, cli):
    assert cli("init", tmp_path / "demo").exit_code == 0
    checked = []
    for root in (ROOT, tmp_path / "demo"):
        for kind, path in _files(root):
            errors = list(_validator(kind).iter_errors(yaml.safe_load(path.read_text())))
            assert errors == [], f"{path}: {[e.message for e in errors]}"
            checked.append(kind)
    assert checked.count("datasource") >= 2 and checked.count("pipe") >= 2


@pytest.mark.parametrize(
    "kind,text,why",
    [
        ("datasource", "columns:\n  - {name: a, type: String}\ncolums: []\n", "colums"),
        ("datasource", "columns:\n  - {name: a, typ: String}\n", "typ"),
        ("datasource", "columns: [{name: a, type: String}]\nengine: MergeTre\n", "MergeTre"),
        (
            "datasource",
            "columns: [{name: a, type: String}]\nengine: {type: ReplacingMergeTree, version: a}\n",
            "version",
        ),
        (
            "datasource",
            "columns: [{name: a, type: String}]\nengine: {type: CollapsingMergeTree}\n",
            "sign",
        ),
        ("datasource", "columns: []\n", "[]"),
        ("pipe", "type: endpoit\nnodes: [{name: a, sql: SELECT 1}]\n", "endpoit"),
        ("pipe", "nodes: [{name: bad-name, sql: SELECT 1}]\n", "bad-name"),
        ("pipe", "nodes: [{name: a, sql: SELECT 1}]\npopulate: yes please\n", "yes please"),
        ("project", "name: shop\ntargets: [embedded]\n", "embedded"),
    ],
)
def test_a_wrong_file_fails_the_schema(kind, text, why):
    errors = list(_validator(kind).iter_errors(yaml.safe_load(text)))
    assert errors, f"{why} passed the {kind} schema"


def test_init_points_each_file_at_its_schema(tmp_path, cli):
    assert cli("init", tmp_path / "demo").exit_code == 0
    demo = tmp_path / "demo"
    for kind, path in _files(demo):
        first = path.read_text().splitlines()[0]
        prefix = "# yaml-language-server: $schema="
        assert first.startswith(prefix), path
        target = (path.parent / first[len(prefix) :]).resolve()
        assert target == (demo / "schemas" / f"{kind}.schema.json").resolve()
        assert json.loads(target.read_text())["title"] == f"rtp {kind}"


def test_an_unknown_kind_is_a_usage_error(cli):
    result = cli("schema", "tests")
    assert result.exit_code == 2


# The pydantic pass words its problems as rtp always has: pinned through `rtp check`.
@pytest.mark.parametrize(
    "files,expected",
    [
        (
            {"datasources/events.yaml": "columns:\n  - {name: a, type: String, jsn: $.a}\n"},
            ("RTP102", "unknown key 'jsn' in column", 2, 29, "did you mean 'json'?"),
        ),
        (
            {"datasources/events.yaml": "columns:\n  - {name: a, type: [String]}\n"},
            ("RTP104", "column type must be text, not a list", 2, 21, None),
        ),
        (
            {
                "datasources/events.yaml": "columns:\n  - {name: a, type: String}\n"
                "sorting_key: [a, {b: 1}]\n"
            },
            ("RTP104", "sorting_key item must be text, not a mapping", 3, 18, None),
        ),
        (
            {
                "datasources/events.yaml": "columns:\n  - {name: a, type: String}\n"
                "  - {name: a, type: UInt8}\n"
            },
            ("RTP105", "column 'a' is defined twice", 3, 12, None),
        ),
        (
            {"pipes/by_user.yaml": "nodes:\n  - {name: 1a, sql: SELECT 1}\n"},
            (
                "RTP106",
                "node name '1a' is not a valid name",
                2,
                12,
                "use letters, digits and underscores, starting with a letter or underscore",
            ),
        ),
        (
            {
                "pipes/by_user.yaml": "type: copy\ntarget: events\nmode: apend\n"
                "nodes:\n  - {name: a, sql: SELECT 1}\n"
            },
            ("RTP107", "copy mode must be one of append, replace", 3, 7, None),
        ),
        (
            {"rtp.yaml": "name: shop\ntargets: {prod: [x]}\n"},
            ("RTP104", "target 'prod' must be text, not a list", 2, 17, None),
        ),
    ],
)
def test_structural_problems_keep_their_wording(project_factory, cli, files, expected):
    root = project_factory(files)
    result = cli("check", "-p", root, "--format", "json")
    assert result.exit_code == 1
    got = [
        (p["code"], p["message"], p["line"], p["column"], p.get("hint"))
        for p in json.loads(result.stdout)["problems"]
    ]
    assert expected in got, got
