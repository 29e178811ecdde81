"""examples/ci/: the GitHub Actions workflow runs commands rtp has, in the documented
order, and its example requests name endpoints of the shop project at the root."""

from __future__ import annotations

import shlex
import urllib.parse
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
CI = ROOT / "examples" / "ci"


def _rtp_commands() -> list[list[str]]:
    workflow = yaml.safe_load((CI / "rtp-deploy.yml").read_text())
    out = []
    for job in workflow["jobs"].values():
        for step in job["steps"]:
            run = step.get("run", "")
            if run.startswith("rtp "):
                words = shlex.split(run.split("|")[0])
                out.append(words[1:])
    return out


def _leading(words: list[str]) -> list[str]:
    """The command's words before its first option, arguments (paths) left out."""
    out = []
    for word in words:
        if word.startswith("-"):
            break
        if "/" not in word:
            out.append(word)
    return out


def test_workflow_runs_existing_commands_in_order(cli):
    commands = _rtp_commands()
    names = [" ".join(_leading(c)) for c in commands]
    assert names[:2] == ["check", "test"]
    staged = names.index("deploy")  # `rtp deploy --stage`
    assert commands[staged][:2] == ["deploy", "--stage"]
    assert names.index("deploy diff") > staged
    assert names.index("deploy promote") > names.index("deploy diff")
    for words in commands:
        subcommand = _leading(words)
        flags = [w.split("=")[0] for w in words if w.startswith("--")]
        result = cli(*subcommand, "--help")
        assert result.exit_code == 0, (words, result.output)
        for flag in flags:
            assert flag in result.output, (words, flag)


def test_example_requests_name_endpoints():
    pipes = {p.stem for p in (ROOT / "pipes").glob("*.yaml")}
    for line in (CI / "requests.txt").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            path = urllib.parse.urlsplit(line.strip()).path
            name = path.removeprefix("/v0/pipes/").split(".")[0]
            assert name in pipes, line
