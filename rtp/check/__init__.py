"""Validation rules run by ``rtp check``, in order, from one tuple.

Each rule is a module exporting one function of the same name taking a
:class:`CheckContext`; it adds problems and may record what later rules need (which
tables exist, each pipe's output columns). Template, reference and cycle checks happen
earlier, in :func:`rtp.sql.compose.compile_project`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from rtp.errors import Problems
from rtp.project.model import Project
from rtp.sql.compose import CompiledProject, compile_project

if TYPE_CHECKING:
    from rtp.engine import Backend


@dataclass
class CheckContext:
    project: Project
    compiled: CompiledProject
    problems: Problems
    backend: Backend  # an in-memory scratch engine
    tables: set[str] = field(default_factory=set)  # datasources created without error
    failed_pipes: set[str] = field(default_factory=set)
    outputs: dict[str, list[tuple[str, str]]] = field(default_factory=dict)
    strict: bool = False  # `rtp check --strict`: the advice rules run too (indexes)

    def pipe_ready(self, name: str) -> bool:
        """Whether a pipe and everything it reads compiled and exists in the engine."""
        if name in self.compiled.broken or name in self.failed_pipes:
            return False
        cpipe = self.compiled.pipes[name]
        return all(
            (r in self.tables) if r in self.project.datasources else self.pipe_ready(r)
            for r in cpipe.reads
        )


def _rules():
    from rtp.check.cache import cache
    from rtp.check.explain import explain
    from rtp.check.indexes import indexes
    from rtp.check.operators import operators
    from rtp.check.outputs import outputs
    from rtp.check.reserved import reserved
    from rtp.check.schemas import schemas
    from rtp.check.sharding import sharding
    from rtp.check.statements import statements

    return (statements, reserved, operators, cache, schemas, explain, outputs, indexes, sharding)


def check_project(
    project: Project,
    problems: Problems,
    backend: Backend | None = None,
    *,
    compiled: CompiledProject | None = None,
    strict: bool = False,
) -> CheckContext:
    """Run every rule on a loaded project; problems are added to ``problems``.

    ``backend`` is an engine to build the schemas in; by default a fresh in-memory chDB.
    ``compiled``: the project already compiled (with its problems already in
    ``problems``); compiled here when None. ``strict``: the advice rules run too.
    """
    if compiled is None:
        compiled = compile_project(project, problems)
    owned = backend is None
    if owned:
        from rtp.engine.embedded import EmbeddedBackend

        backend = EmbeddedBackend(":memory:", database="rtp_check")
    ctx = CheckContext(project, compiled, problems, backend, strict=strict)
    try:
        for rule in _rules():
            rule(ctx)
    finally:
        if owned:
            backend.close()
    return ctx
