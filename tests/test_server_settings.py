"""Every user-settable field of ServerSettings has a `server:` key, an environment
variable, a row in docs/serve.md#settings, and (but docs_url) a flag on `rtp serve`."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest
import typer.main

from rtp.cli.main import app
from rtp.errors import ProjectError
from rtp.project.load import load_project
from rtp.project.schema import ServerSection
from rtp.server.settings import FLAGS, ServerSettings, env_name, server_settings

DOCS = Path(__file__).resolve().parent.parent / "docs" / "serve.md"
INTERNAL = {"tokens_file", "control_token", "consumers", "extra"}  # set by rtp itself


def test_every_setting_has_a_key_a_variable_a_flag_and_a_row():
    fields = {f.name for f in dataclasses.fields(ServerSettings)} - INTERNAL
    assert set(ServerSection.model_fields) == fields == set(FLAGS)
    table = DOCS.read_text(encoding="utf-8").split("## Settings", 1)[1].split("\n## ", 1)[0]
    rows = {m.group(1): m.group(0) for m in re.finditer(r"^\| `(\w+)` \|.*$", table, re.M)}
    assert set(rows) == fields
    serve = typer.main.get_command(app).commands["serve"]
    options = {opt: p.name for p in serve.params for opt in (*p.opts, *p.secondary_opts)}
    for name in fields:
        assert f"`{env_name(name)}`" in rows[name], name
        if FLAGS[name]:
            assert f"`{FLAGS[name]}`" in rows[name], name
            for flag in FLAGS[name].split("/"):
                assert options.get(flag) == name, name  # rtp.cli.serve.setting_flags


def test_setting_flags_are_named_as_their_setting():
    """`rtp serve` and `rtp dev` pass a flag on as the setting its parameter is named
    after (rtp.cli.serve.setting_flags): a flag under another name would be ignored."""
    setting_of = {flag: name for name, f in FLAGS.items() if f for flag in f.split("/")}
    for command in ("serve", "dev"):
        params = typer.main.get_command(app).commands[command].params
        given = {(p.opts[0], p.name) for p in params if p.opts[0] in setting_of}
        assert given == {(flag, setting_of[flag]) for flag, _ in given}, command
        assert len(given) >= 6, command  # --cors, --timeout, --max-memory, ... at least


def test_precedence_flag_env_file_default(project_factory):
    root = project_factory(
        {
            "rtp.yaml": "name: shop\nserver:\n  workers: 2\n  batch_wait: 1s\n"
            "  max_memory_usage: 1GiB\n"
        }
    )
    model, problems = load_project(root)
    assert not problems.errors
    assert server_settings(model, {}, {}).workers == 2  # the file over the default
    assert server_settings(model, {"RTP_SERVER_WORKERS": "3"}, {}).workers == 3
    assert server_settings(model, {"RTP_SERVER_WORKERS": "3"}, {"workers": 5}).workers == 5
    assert server_settings(model, {}, {"workers": None}).workers == 2  # None: not given
    settings = server_settings(model, {}, {})
    assert (settings.batch_wait, settings.max_memory_usage) == (1.0, 2**30)
    assert settings.admin_max_memory_usage == 4 * 2**30
    assert settings.max_result_rows == ServerSettings().max_result_rows  # default


def test_a_bad_file_value_raises_at_its_place(project_factory):
    root = project_factory({"rtp.yaml": "name: shop\nserver:\n  max_body_bytes: 0\n"})
    model, problems = load_project(root)
    assert [str(p.location) for p in problems.errors] == ["rtp.yaml:3:19"]
    with pytest.raises(ProjectError) as exc:
        server_settings(model, {}, {"max_body_bytes": "1MiB"})  # refused even so
    assert exc.value.code == "RTP107" and str(exc.value.location) == "rtp.yaml:3:19"


@pytest.mark.parametrize(
    ("key", "text", "value"),
    [
        ("query_timeout", "500ms", 0.5),
        ("query_timeout", "2m", 120.0),
        ("batch_wait", 0, 0.0),
        ("max_body_bytes", "10MiB", 10 * 2**20),
        ("max_body_bytes", "2KB", 2000),
        ("max_rows_to_read", "1_000", 1000),
        ("schedules", "off", False),
        ("cors_origins", "https://a, https://b", ("https://a", "https://b")),
    ],
)
def test_values_read_one_way(key, text, value):
    assert getattr(ServerSection.model_validate({key: text}), key) == value


@pytest.mark.parametrize(
    ("key", "text"),
    [
        ("query_timeout", 0),
        ("query_timeout", "soon"),
        ("workers", 0),
        ("workers", 1.5),
        ("rate_limit", -1),
        ("rate_limit", True),
        ("max_body_bytes", "1.5B"),
        ("schedules", "maybe"),
        ("max_memory_usage", "2 parsecs"),
    ],
)
def test_bad_values_are_refused(key, text):
    from pydantic import ValidationError

    with pytest.raises(ValidationError):
        ServerSection.model_validate({key: text})
