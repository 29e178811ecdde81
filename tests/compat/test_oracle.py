"""Differential test against Tinybird's own parser and template engine (the oracle).

The `tinybird` CLI package is installed in its own venv (``.ci/run`` does it:
``python -m venv /tmp/tbvenv && /tmp/tbvenv/bin/pip install tinybird``; another place
with ``RTP_TINYBIRD_PYTHON``). It is a test-time tool only: run, never imported here.
For every pipe file of the corpus both sides must read the same nodes and parameters
(names, types, defaults, required), and render each node to the same SQL with no
values (Tinybird's test mode; rtp's check). ``python -m tests.compat.test_oracle``
prints the agreement figures and each disagreement.

Renders are compared after normalising what differs only in spelling: whitespace,
SQL comments (Tinybird writes ``-- max_threads 2`` hints, rtp ``/* */`` to keep lines),
Tinybird's ``toInt32('5')`` for rtp's ``5``, and identifiers in back quotes.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

HERE = Path(__file__).parent
ORACLE = Path(os.environ.get("RTP_TINYBIRD_PYTHON", "/tmp/tbvenv/bin/python"))


def _oracle_ready() -> bool:
    if not ORACLE.exists():
        return False
    probe = subprocess.run(
        [str(ORACLE), "-c", "import tinybird.sql_template"], capture_output=True, timeout=120
    )
    return probe.returncode == 0


def normalise(sql: str) -> str:
    sql = re.sub(r"^\s*%\s*\n", "", sql)
    sql = re.sub(r"/\*.*?\*/|--[^\n]*|^\s*#[^\n]*", "", sql, flags=re.S | re.M)
    sql = re.sub(r"to(?:U?Int\d*|Float\d+)\('(-?[0-9.e+]+)'\)", r"\1", sql)
    sql = sql.replace("`", "")
    return re.sub(r"\s+", "", sql)


def _tb_params(node: dict) -> dict:
    """Tinybird's parameters, less the names a ``{% set %}`` assigns (its discovery
    lists them; a caller's value for one is overwritten, so they take none)."""
    assigned = set(re.findall(r"\{%-?\s*set\s+(\w+)\s*=", node.get("sql", "")))
    out = {}
    for p in node.get("params", []):
        if p["name"] in assigned:
            continue
        out[p["name"]] = (
            p.get("type", "String"),
            _norm_default(p.get("default")),
            bool(p.get("required", False)),
        )
    return out


def _text(value) -> str:
    if isinstance(value, list | tuple):
        return ",".join(map(_text, value))
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _norm_default(value):
    if value is None:
        return None
    return str(value)


def _rtp_params(template) -> dict:
    out = {}
    for name, p in template.params.items():
        default = p.default
        if isinstance(default, list | tuple):
            default = ",".join(map(str, default))
        out[name] = (p.type, _norm_default(default), p.required)
    return out


def compare(paths: list[Path]) -> dict:
    """Figures and disagreements for ``paths`` (pipe files)."""
    from rtp.errors import RtpError
    from rtp.project.load import load_project
    from rtp.sql.template import TemplateError, compile_template

    stats = {
        "files": 0,
        "nodes_same": 0,
        "nodes": 0,
        "params_same": 0,
        "renders": 0,
        "renders_same": 0,
        "differences": [],
    }
    projects: dict[Path, object] = {}
    tmp = tempfile.TemporaryDirectory(prefix="rtp-oracle-")  # loading never writes here
    pipes: dict[Path, object] = {}
    values: dict[str, dict] = {}  # rtp's check values, as a caller's text, for both sides
    for path in paths:
        root = next(p for p in path.parents if p.parent == (HERE / "projects").resolve())
        if root not in projects:
            copy = Path(tmp.name) / root.name
            shutil.copytree(root, copy)
            try:
                projects[root] = load_project(copy)[0]
            except RtpError:
                projects[root] = None
        model = projects[root]
        rel = path.relative_to(root).as_posix()
        pipes[path] = (
            next((p for p in model.pipes.values() if p.file == rel), None) if model else None
        )
        values[str(path)] = {}
        for node in pipes[path].nodes if pipes[path] else []:
            try:
                samples = compile_template(node.sql).sample_values()
            except TemplateError:
                continue
            values[str(path)].update({k: _text(v) for k, v in samples.items()})
    raw = subprocess.run(
        [str(ORACLE), str(HERE / "oracle_dump.py"), *map(str, paths)],
        input=json.dumps(values),
        capture_output=True,
        text=True,
        timeout=600,
        check=True,
    ).stdout
    oracle = json.loads(raw)
    for path in paths:
        root = next(p for p in path.parents if p.parent == (HERE / "projects").resolve())
        rel, pipe, tb = path.relative_to(root).as_posix(), pipes[path], oracle[str(path)]
        stats["files"] += 1
        if pipe is None or "error" in tb:
            stats["differences"].append((rel, "file", tb.get("error"), pipe is not None))
            continue
        tb_nodes = [(n["name"], n["sql"].strip()) for n in tb["nodes"]]
        rtp_nodes = [(n.name, n.sql.strip()) for n in pipe.nodes]
        stats["nodes"] += 1
        if [n for n, _ in tb_nodes] == [n for n, _ in rtp_nodes]:
            stats["nodes_same"] += 1
        else:
            stats["differences"].append(
                (rel, "nodes", [n for n, _ in tb_nodes], [n for n, _ in rtp_nodes])
            )
        same_params = True
        for tb_node, node in zip(tb["nodes"], pipe.nodes, strict=False):
            try:
                template = compile_template(node.sql)
            except TemplateError as exc:
                stats["differences"].append((rel, "compile", node.name, exc.message))
                same_params = False
                continue
            theirs, ours = _tb_params(tb_node), _rtp_params(template)
            if theirs != ours:
                same_params = False
                stats["differences"].append((rel, "params", node.name, theirs, ours))
            stats["renders"] += 1
            try:
                mine = template.render(template.coerce_values(values[str(path)]), check=True)
            except RtpError as exc:
                mine = f"!! {exc.message}"
            if "rendered" in tb_node and normalise(tb_node["rendered"]) == normalise(mine):
                stats["renders_same"] += 1
            elif "rendered" not in tb_node and mine.startswith("!!"):
                stats["renders_same"] += 1  # both refuse
            else:
                stats["differences"].append(
                    (
                        rel,
                        "render",
                        node.name,
                        tb_node.get("rendered", tb_node.get("render_error")),
                        mine,
                    )
                )
        stats["params_same"] += same_params
    tmp.cleanup()
    return stats


def corpus_pipes() -> list[Path]:
    return sorted(p.resolve() for p in (HERE / "projects").rglob("*.pipe") if p.is_file())


@pytest.fixture(scope="module")
def figures():
    if not _oracle_ready():
        pytest.skip(
            f"the Tinybird oracle is not installed at {ORACLE} (python -m venv "
            "/tmp/tbvenv && /tmp/tbvenv/bin/pip install tinybird; .ci/run does it)"
        )
    return compare(corpus_pipes())


# Measured: 212 of 213 pipes read by both have the same nodes (the one left: a node
# name used twice, which rtp refuses, RTP105; Tinybird refuses 4 more files for ENGINE
# lines); 211 the same parameters (Tinybird keeps `Int16(x, _default_name)`'s default as
# the name, rtp resolves the `{% set %}`; Tinybird gives column()'s name no default);
# 303 of 304 nodes render the same (Tinybird escapes `%` as `\%` in quoted values).


def test_every_pipe_has_the_same_nodes(figures):
    assert figures["nodes_same"] >= figures["nodes"] - 1, _diffs(figures, "nodes")


def test_parameters_agree(figures):
    # names, types, defaults and required flags, node by node
    assert figures["params_same"] >= figures["nodes"] - 2, _diffs(figures, "params")


def test_renders_agree(figures):
    assert figures["renders_same"] >= figures["renders"] - 1, _diffs(figures, "render")


def _diffs(figures, kind):
    return [d for d in figures["differences"] if d[1] == kind][:5]


if __name__ == "__main__":
    got = compare(corpus_pipes())
    for diff in got.pop("differences"):
        print(*diff, sep="\n    ", end="\n\n")
    print(json.dumps(got))
    sys.exit(0)
