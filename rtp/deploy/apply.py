"""Apply a plan: run each change's statements in order and record it in the state.

The whole apply holds the backend (``backend.exclusive()``): on the embedded engine,
where every writer goes through the one owning process, no insert lands between a
view's backfill and its creation, so nothing is lost or counted twice.

Every step is journaled before it runs (see :mod:`rtp.deploy.journal`): a deploy killed
at any point, or stopped by a failing statement, is finished by the next ``apply`` /
``deploy`` / ``rtp deploy`` from its journal before anything new is planned, without
``--allow-destructive`` (its plan was approved when it started).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from rtp.deploy.journal import Journal, Unfinished, find_unfinished, restart_point, run
from rtp.deploy.plan import Change, Plan, plan
from rtp.deploy.state import Record, read_live, write_record
from rtp.engine import QueryError
from rtp.errors import EngineError, RtpError

if TYPE_CHECKING:
    from rtp.engine import Backend
    from rtp.project.model import Project
    from rtp.sql.compose import CompiledProject

log = logging.getLogger("rtp.deploy")


def apply(
    plan: Plan,
    backend: Backend,
    *,
    allow_destructive: bool = False,
    progress: Callable[[Change], None] | None = None,
) -> list[Change]:
    """Run the plan's changes; returns those applied. ``progress`` is called before each.

    Raises EngineError RTP504 (before running anything) when a change is destructive
    and ``allow_destructive`` is false, RTP509 when an unfinished deploy's journal is
    on the target (finish it with :func:`resume` first), RTP501 (before running
    anything) when a node of a cluster can't be reached, and RTP503 naming the change
    and statement when a statement fails (the journal stays: the next deploy resumes it).
    """
    if plan.destructive and not allow_destructive:
        names = ", ".join(f"{c.action} {c.kind} {c.name}" for c in plan.destructive)
        raise EngineError(
            f"the plan would lose data: {names}",
            code="RTP504",
            hint="review `rtp deploy --plan`, then pass --allow-destructive",
        )
    pending = plan.pending
    if not pending:
        return []
    if plan.down:
        # ON CLUSTER statements would wait for the node, then leave it behind
        raise EngineError(
            f"cluster node {'; '.join(plan.down)}: nothing was applied",
            code="RTP501",
            hint="start the node (or remove it from the cluster's definition), then run "
            "`rtp deploy` again",
        )
    with backend.exclusive():
        unfinished = find_unfinished(backend)
        if unfinished is not None:
            raise EngineError(
                f"deploy {unfinished.deploy_id} on {plan.target} did not "
                "finish; it must be finished first",
                code="RTP509",
                hint="run `rtp deploy` (it finishes the journaled deploy and then plans again)",
            )
        journal = Journal(backend)
        journal.begin(plan.target, pending)
        _run(backend, journal, pending, 0, False, progress)
        journal.finish()
    return pending


def resume(
    backend: Backend,
    *,
    progress: Callable[[Change], None] | None = None,
    announce: Callable[[Unfinished], None] | None = None,
) -> Unfinished | None:
    """Finish the target's unfinished deploy, if there is one, from its journal (roll
    forward); returns what was finished, or None. ``announce`` is called before anything
    runs (default: a warning in the log). Raises EngineError RTP503 as :func:`apply`.
    """
    with backend.exclusive():
        unfinished = find_unfinished(backend)
        if unfinished is None:
            return None
        (announce or (lambda u: log.warning("resuming %s", u.describe())))(unfinished)
        start, guard = restart_point(unfinished.changes, unfinished.last)
        journal = Journal(backend, unfinished.deploy_id)
        _run(backend, journal, unfinished.changes, start, guard, progress)
        journal.finish()
    return unfinished


def deploy(
    project: Project,
    backend: Backend,
    *,
    allow_destructive: bool = False,
    compiled: CompiledProject | None = None,
) -> Plan:
    """Finish an interrupted deploy (see :func:`resume`), then plan and apply in one
    call (``rtp serve``, ``rtp dev`` and ``rtp test`` use it). Returns the plan that was
    applied. Raises as :func:`plan` and :func:`apply`."""
    resume(backend)
    result = plan(project, backend, compiled=compiled)
    apply(result, backend, allow_destructive=allow_destructive)
    return result


def _run(
    backend: Backend,
    journal: Journal,
    changes: list[Change],
    start: int,
    guard: bool,
    progress: Callable[[Change], None] | None,
) -> None:
    try:
        run(backend, journal, changes, start, guard_first=guard, record=_record, progress=progress)
    except QueryError as exc:
        if exc.step is not None:
            ci, si = exc.step
            change = changes[ci]
            where = (
                f"{change.action} {change.kind} {change.name}, step {si + 1} of {len(change.steps)}"
            )
        else:
            where = "a guarded step"
        raise EngineError(
            f"deploy stopped at {where}: {exc.message}",
            code="RTP503",
            hint=f"statement: {_first_line(exc.sql or '')}. The deploy is journaled in "
            "the target: fix the cause and run `rtp deploy` again to finish it",
        ) from None


def _record(backend: Backend, change: Change) -> None:
    try:
        if change.record is None:
            write_record(backend, Record(change.name, change.kind, ""), deleted=True)
            return
        live = read_live(backend).get(change.name)
        rec = change.record
        write_record(
            backend, Record(rec.name, rec.kind, rec.hash, rec.spec, live.hash if live else "")
        )
    except RtpError as exc:
        raise EngineError(
            f"{change.name} was deployed but recording it in the deploy "
            f"state failed: {exc.message}",
            code="RTP503",
            hint="run `rtp deploy` again; it finishes the journaled deploy",
        ) from None


def _first_line(sql: str) -> str:
    line = sql.strip().splitlines()[0] if sql.strip() else ""
    return line if len(line) < 120 else line[:117] + "..."
