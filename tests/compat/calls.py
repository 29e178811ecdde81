"""How many endpoint calls of the public Tinybird corpus rtp answers as Tinybird would.

``python -m tests.compat.measure --calls [--held-out|--all] [NAME...]``

Per project, through the user's door: a copy of the project is deployed with
``rtp deploy`` (embedded engine, empty tables) and served by ``rtp serve``; every endpoint
pipe in ``GET /v0/pipes`` is called as a client would, over HTTP:

- without parameters: Tinybird answers 200, or 400 "required parameter is not
  defined" (RTP401) when the pipe uses a parameter without a default (declared
  ``required=True`` or not: Tinybird refuses both);
- after such a 400, again with each parameter it names given its example or a plain
  value of its type: 200;
- with the parameters of each of the project's own test cases (``tests/<pipe>.yaml``):
  their ``expected_http_status``, else 200.

A call counts as answered when its status is the one expected, or when the pipe's own
template answered it (``error()``/``custom_error()``, RTP402: the author's answer, which
Tinybird renders the same way). ``rtp deploy`` refuses a project with check errors; such
a project is deployed without the files that have them (as Tinybird Classic's ``tb push``
leaves out a file it refuses), and their endpoints count as not answered. A project that
still fails to deploy or serve fails all its calls (endpoints counted from its files).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import httpx

# a value of each parameter type for a required parameter that has no example
PLAIN = {
    "String": "a",
    "Boolean": "1",
    "Date": "2024-01-01",
    "DateTime": "2024-01-01 00:00:00",
    "DateTime64": "2024-01-01 00:00:00",
}


@dataclass
class Calls:
    name: str
    endpoints: int = 0
    calls: int = 0
    answered: int = 0
    deploy_exit: int | None = None
    left_out: int = 0  # datafiles with check errors, deleted from the deployed copy
    groups: Counter = field(default_factory=Counter)  # "status code message" -> calls

    def as_dict(self) -> dict:
        return {
            "name": self.name,
            "endpoints": self.endpoints,
            "calls": self.calls,
            "answered": self.answered,
            "deploy_exit": self.deploy_exit,
            "left_out": self.left_out,
            "groups": dict(self.groups),
        }


def _plain(param: dict) -> str:
    if param.get("example") not in (None, ""):
        return str(param["example"])
    kind = param.get("type") or "String"
    if kind.startswith("Array("):
        return _plain({"type": kind[6:-1]})
    if kind in PLAIN:
        return PLAIN[kind]
    return "1" if re.match(r"U?Int|Float|Decimal", kind) else "a"


def _group(response: httpx.Response) -> str:
    try:
        body = response.json()
        text = f"{body.get('code', '')} {body.get('error', '')}"
    except ValueError:
        text = response.text[:200]
    text = re.sub(r"(?<![A-Za-z])'[^']*'", "'…'", text)
    text = re.sub(r"`[^`]*`", "`…`", text)
    return f"{response.status_code} " + re.sub(r"\d+", "N", text)[:120]


def _test_cases(root: Path) -> dict[str, list[tuple[str, int]]]:
    """pipe -> [(query string, expected status)] from Tinybird's test files."""
    import yaml

    cases: dict[str, list[tuple[str, int]]] = {}
    for path in sorted((root / "tests").glob("*.y*ml")) if (root / "tests").is_dir() else ():
        try:
            doc = yaml.safe_load(path.read_text(encoding="utf-8"))
        except yaml.YAMLError:
            continue
        for case in doc if isinstance(doc, list) else ():
            if isinstance(case, dict):
                status = int(case.get("expected_http_status") or 200)
                query = str(case.get("parameters") or "")
                cases.setdefault(path.stem, []).append((query, status))
    return cases


def _endpoint_count(root: Path) -> int:
    from rtp.errors import RtpError
    from rtp.project.load import load_project

    try:
        model, _ = load_project(root)
    except RtpError:
        return 0
    return sum(1 for p in model.pipes.values() if p.type == "endpoint")


def measure_calls(folder: Path) -> Calls:
    from tests.serving import ENV, rtp_serve

    result = Calls(folder.name)
    with tempfile.TemporaryDirectory(prefix="rtp-calls-") as tmp:
        root = Path(tmp) / folder.name
        shutil.copytree(folder, root)
        result.endpoints = _endpoint_count(root)
        for _ in range(3):  # leaving out a file may break a file that reads it
            deploy = subprocess.run(
                [sys.executable, "-m", "rtp.cli.main", "deploy", "-p", str(root)],
                env=ENV,
                capture_output=True,
                text=True,
                timeout=600,
            )
            result.deploy_exit = deploy.returncode
            if deploy.returncode == 0 or not _leave_out_failing(root, result):
                break
        if deploy.returncode != 0:
            first = next((ln for ln in deploy.stdout.splitlines() if "error" in ln), "")
            message = re.sub(r"^\S+:\d+:\d+: ", "", first)[:120]
            result.calls = result.endpoints
            result.groups[f"deploy failed: {message}"] += result.endpoints
            return result
        try:
            with rtp_serve(root, env=ENV, timeout=120) as served:
                _call_all(served.base, served.admin, result, _test_cases(root))
        except AssertionError as exc:  # the server did not start
            result.calls = result.endpoints
            result.groups[f"serve failed: {str(exc).splitlines()[0][:100]}"] += result.endpoints
    return result


def _leave_out_failing(root: Path, result: Calls) -> bool:
    """Delete the datafiles ``rtp check`` finds errors in; count their endpoints as not
    answered. False when there is none to leave out."""
    from rtp.check import check_project
    from rtp.errors import Problems, RtpError
    from rtp.project.load import load_project

    problems = Problems()
    try:
        model, problems = load_project(root)
        check_project(model, problems)
    except RtpError:
        return False
    failing: dict[str, str] = {}
    for problem in problems.errors:
        if problem.location and problem.location.file.endswith((".pipe", ".datasource")):
            failing.setdefault(problem.location.file, f"{problem.code} {problem.message}")
    for file, message in failing.items():
        stem = Path(file).stem
        pipe = model.pipes.get(stem)
        if pipe is not None and pipe.type == "endpoint":
            message = re.sub(r"(?<![A-Za-z])'[^']*'|`[^`]*`", "'…'", message)[:100]
            result.calls += 1
            result.groups[f"left out, check error: {message}"] += 1
        (root / file).unlink()
    result.left_out += len(failing)
    return bool(failing)


def _call_all(
    base: str, admin: str, result: Calls, tests: dict[str, list[tuple[str, int]]]
) -> None:
    headers = {"Authorization": f"Bearer {admin}"}
    with httpx.Client(base_url=base, headers=headers, timeout=60) as client:
        pipes = client.get("/v0/pipes").json()["pipes"]
        endpoints = [p for p in pipes if p["type"] == "endpoint"]
        published = len(endpoints) + sum(
            n for g, n in result.groups.items() if g.startswith("left out")
        )
        result.endpoints = max(result.endpoints, published)
        missing = result.endpoints - published
        if missing:
            result.calls += missing
            result.groups["endpoint not published"] += missing
        for pipe in endpoints:
            params = pipe.get("params") or []
            required = [p for p in params if p["required"]]
            cases: list[tuple[dict | str, int]] = [({}, 400 if required else 200)]
            cases += tests.get(pipe["name"], [])
            for i, (query, expected) in enumerate(cases):
                response = client.get(f"/v0/pipes/{pipe['name']}.json", params=query)
                result.calls += 1
                if i == 0 and _code(response) == "RTP401":
                    # no parameters: refused for one used without a default, as by Tinybird
                    # (its message names them); then again with a value for each
                    expected = 400
                    types = {p["name"]: p for p in params}
                    needed = _named(response.json().get("error", ""))
                    cases.insert(1, ({n: _plain(types.get(n, {})) for n in needed}, 200))
                if response.status_code == expected or _code(response) == "RTP402":
                    result.answered += 1
                else:
                    result.groups[f"{_group(response)} (expected {expected})"] += 1


def _named(message: str) -> list[str]:
    """The parameters Tinybird's "Required parameter is not defined. Check the parameters
    a, b and c." message names."""
    m = re.search(r"Check the parameters? (.+?)\. ", message)
    return re.split(r", | and ", m.group(1)) if m else []


def _code(response: httpx.Response) -> str | None:
    """rtp's error code of a refused call (RTP402: the pipe's own error()/custom_error()
    refused it, the author's answer)."""
    if response.status_code < 400:
        return None
    try:
        return response.json().get("code")
    except ValueError:
        return None
