"""`rtp check` refuses endpoint parameters named q, token or format: the HTTP API keeps
those names (``q=`` runs SQL over the endpoint's result), so such a parameter would never
get the caller's value."""

from __future__ import annotations

import json

import pytest

BY_USER = """
    type: endpoint
    nodes:
      - name: a
        sql: |
          SELECT user_id FROM events
          WHERE user_id = {{{{ String({name}, 'u1') }}}}
"""


@pytest.mark.parametrize("name", ["q", "token", "format"])
def test_reserved_parameter_names_are_refused_at_their_place(project_factory, cli, name):
    root = project_factory({"pipes/by_user.yaml": BY_USER.format(name=name)})
    result = cli("check", "-p", root, "--format", "json")
    assert result.exit_code != 0
    problems = json.loads(result.output)["problems"]
    found = [p for p in problems if p["code"] == "RTP301"]
    assert len(found) == 1, problems
    assert (found[0]["file"], found[0]["line"], found[0]["column"]) == ("pipes/by_user.yaml", 6, 33)
    assert f"'{name}'" in found[0]["message"] and "reserved" in found[0]["message"]


def test_a_pipe_read_by_an_endpoint_is_checked_too(project_factory, cli):
    root = project_factory(
        {
            "pipes/by_user.yaml": BY_USER.format(name="q").replace("endpoint", "internal"),
            "pipes/top.yaml": "nodes:\n  - {name: t, sql: SELECT * FROM by_user}\n",
        }
    )
    problems = json.loads(cli("check", "-p", root, "--format", "json").output)["problems"]
    assert [p["file"] for p in problems if p["code"] == "RTP301"] == ["pipes/by_user.yaml"]


def test_search_is_fine(project_factory, cli):
    root = project_factory({"pipes/by_user.yaml": BY_USER.format(name="search")})
    assert cli("check", "-p", root).exit_code == 0
