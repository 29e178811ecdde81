"""A template's plan (rtp.sql.segments: static text once, parameter-dependent parts per
call) renders exactly what Jinja renders, for every node of the example project, the
examples and the public Tinybird projects under tests/compat, with sample values, with
none, and in check mode: the same text or the same error."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pytest

from rtp.project.load import load_project
from rtp.sql.template import Template, compile_template

ROOT = Path(__file__).resolve().parent.parent
PROJECTS = [
    ROOT,
    *sorted(p for p in (ROOT / "examples").iterdir() if p.is_dir()),
    *sorted(p for p in (ROOT / "tests/compat/projects").iterdir() if p.is_dir()),
]


def _load(root: Path):
    if (root / "rtp.yaml").exists():
        return load_project(root)[0]
    # a Tinybird project: read as it is, from a folder of its own (tests/compat/measure.py)
    copy = Path(tempfile.mkdtemp(prefix="rtp_segments_")) / root.name
    shutil.copytree(root, copy)
    (copy / "rtp.yaml").write_text(f"name: {root.name.replace('-', '_')}\n")
    try:
        return load_project(copy)[0]
    finally:
        shutil.rmtree(copy.parent, ignore_errors=True)


def _templates() -> list[tuple[str, Template]]:
    out = []
    for root in PROJECTS:
        try:
            model = _load(root)
        except Exception:  # noqa: BLE001 — a folder that is no project has no nodes
            continue
        for pipe in model.pipes.values():
            for node in pipe.nodes:
                try:
                    template = compile_template(node.sql)
                except Exception:  # noqa: BLE001 — rtp check reports it; nothing to render
                    continue
                out.append((f"{root.name}/{pipe.name}.{node.name}", template))
    return out


TEMPLATES = _templates()


def _outcome(render):
    try:
        return ("text", render())
    except Exception as exc:  # noqa: BLE001 — the same error is the expectation
        return ("error", type(exc).__name__, str(exc))


def _both(template: Template, values: dict, check: bool):
    planned = _outcome(lambda: template._render(values, check))
    plan, template._plan = template._plan, None
    try:
        jinja = _outcome(lambda: template._render(values, check))
    finally:
        template._plan = plan
    return planned, jinja


def test_most_templates_have_a_plan():
    planned = [name for name, t in TEMPLATES if t._plan is not None]
    assert len(TEMPLATES) > 100 and len(planned) > len(TEMPLATES) / 2, (
        len(planned),
        len(TEMPLATES),
    )


@pytest.mark.parametrize(
    "name,template", [(n, t) for n, t in TEMPLATES if t._plan is not None], ids=lambda x: x
)
def test_a_plan_renders_what_jinja_renders(name, template):
    samples = template.sample_values()
    for values, check in (
        (dict(samples), False),
        (samples, True),
        ({}, False),
        ({}, True),
        ({k: None for k in template.params}, False),
    ):
        planned, jinja = _both(template, values, check)
        assert planned == jinja, (name, values, check)


@pytest.mark.parametrize(
    "source",
    [
        "SELECT {{ 'x' }}, {{ 1 }}, {{ -2.5 }}, {{ [1, 'a'] }}, {{ not defined(y) }}",
        "SELECT {% if defined(a) and not defined(b) %}{{ Int32(a) }}"
        "{% elif b or y %}{{ b }}{% else %}0{% end %}",
        "{{ columns(cols, 'a,b') }} WHERE {{ sql_and(x__in=Array(ids, 'Int32', defined=False)) }}",
        "SELECT {{ error('no') }}",
    ],
)
def test_each_construct_a_plan_covers(source):
    template = compile_template(source)
    assert template._plan is not None
    for values in ({}, {"a": 3}, {"b": "q"}, {"a": 1, "b": "z", "y": 1, "cols": "c", "ids": [1]}):
        for check in (False, True):
            planned, jinja = _both(template, values, check)
            assert planned == jinja, (values, check)


def test_what_a_plan_does_not_cover_renders_through_jinja():
    for source in (
        "{% set n = 3 %}SELECT {{ n }}",
        "{% for x in [1, 2] %}{{ x }}{% end %}",
        "SELECT {{ Int32(a, 1) * 2 }}",
        "{% try %}{{ Int32(a) }}{% except %}0{% end %}",
    ):
        template = compile_template(source)
        assert template._plan is None, source
        assert template.render({"a": 2}) != ""
