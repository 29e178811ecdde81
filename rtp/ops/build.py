"""The compiled project, built once per entry point.

``build(root)`` loads the files, compiles every pipe and, by default, runs the check
rules against a scratch engine (what ``rtp check`` reports). The result is frozen: the
operations read it and never compile again, and its ``problems`` travel with it, so the
CLI and the server refuse a broken project the same way (:meth:`Build.require_valid`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from rtp.engine.embedded import open_engines
from rtp.errors import EngineError, Problems, ProjectError, RtpError, from_dict
from rtp.project.load import load_project
from rtp.project.model import Project
from rtp.sql.compose import CompiledProject, compile_project


class ProjectInvalid(ProjectError):
    """The project has errors; ``problems`` lists them (each with its location)."""

    def __init__(self, problems: list[RtpError]) -> None:
        first = problems[0]
        super().__init__(
            f"the project has {len(problems)} error(s); run `rtp check`",
            code="RTP109",
            hint=f"first: {first}",
        )
        self.problems = problems


@dataclass(frozen=True)
class Build:
    root: Path
    project: Project
    compiled: CompiledProject
    problems: tuple[RtpError, ...]
    checked: bool  # the check rules ran (schemas and every node's SQL in a scratch engine)

    @property
    def errors(self) -> list[RtpError]:
        return [p for p in self.problems if p.severity == "error"]

    def sorted_problems(self) -> list[RtpError]:
        return Problems(list(self.problems)).sorted()

    def require_valid(self) -> None:
        """Raise :class:`ProjectInvalid` (RTP109) when the project has errors."""
        errors = Problems(self.errors).sorted()
        if errors:
            raise ProjectInvalid(errors)


def build(root: Path, *, check: bool = True, strict: bool = False) -> Build:
    """Load, compile and (``check``) check the project at ``root``; ``strict`` adds the
    advice of ``rtp check --strict`` (:mod:`rtp.check.indexes`).

    Problems are collected, not raised (see :meth:`Build.require_valid`); a file that
    can't be read at all is one problem like any other.
    """
    project, problems = load_project(root)  # raises only when there is no project at all
    compiled = compile_project(project, problems)
    if check:
        if open_engines():
            if not problems.errors:  # else refused anyway: spare the second process
                _check_elsewhere(Path(root), problems)
        else:
            from rtp.check import check_project

            check_project(project, problems, compiled=compiled, strict=strict)
    return Build(Path(root), project, compiled, tuple(problems), check)


def _check_elsewhere(root: Path, problems: Problems) -> None:
    """The check rules in a fresh process (``rtp check --format json``): this process
    holds an embedded engine (``rtp serve``, ``rtp dev``), and chDB opens no second
    engine beside it, not even the in-memory one the rules build schemas in (nor may
    the rules close theirs without touching it). Adds the
    problems the rules found that the in-process build did not."""
    import json
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-m", "rtp.cli.main", "check", "--format", "json", "-p", str(root)],
        capture_output=True,
        text=True,
        check=False,
    )
    try:
        found = json.loads(done.stdout)["problems"]
    except (ValueError, KeyError):
        raise EngineError(
            "the project could not be checked: `rtp check` failed",
            code="RTP500",
            hint=(done.stderr.strip().splitlines() or [""])[-1],
        ) from None
    seen = {_key(p.to_dict()) for p in problems}
    for item in found:
        if _key(item) not in seen:
            problems.add(from_dict(item))


def _key(item: dict) -> tuple:
    return (item["code"], item["file"], item["line"], item["column"], item["message"])
