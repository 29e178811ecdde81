"""Apply a plan: run each change's statements in order and record it in the state.

The whole apply holds the backend (``backend.exclusive()``): on the embedded engine,
where every writer goes through the one owning process, no insert lands between a
view's backfill and its creation, so nothing is lost or counted twice. A failing
statement stops the apply: finished changes are recorded, so running deploy again
resumes from the failed change (rebuilds start by dropping their leftovers).
"""

from __future__ import annotations

from collections.abc import Callable

from rtp.deploy.plan import Change, Plan, plan
from rtp.deploy.state import Record, read_live, write_record
from rtp.engine import QueryError
from rtp.errors import EngineError, RtpError


def apply(plan: Plan, backend, *, allow_destructive: bool = False,
          progress: Callable[[Change], None] | None = None) -> list[Change]:
    """Run the plan's changes; returns those applied. ``progress`` is called before each.

    Raises EngineError RTP504 (before running anything) when a change is destructive
    and ``allow_destructive`` is false, and RTP503 naming the change and statement when
    a statement fails.
    """
    if plan.destructive and not allow_destructive:
        names = ", ".join(f"{c.action} {c.kind} {c.name}" for c in plan.destructive)
        raise EngineError(f"the plan would lose data: {names}", code="RTP504",
                          hint="review `rtp deploy --plan`, then pass --allow-destructive")
    done: list[Change] = []
    with backend.exclusive():
        for change in plan.pending:
            if progress is not None:
                progress(change)
            for i, sql in enumerate(change.steps, 1):
                try:
                    backend.execute(sql)
                except QueryError as exc:
                    raise EngineError(
                        f"deploy stopped at {change.action} {change.kind} {change.name}, "
                        f"step {i} of {len(change.steps)}: {exc.message}", code="RTP503",
                        hint=f"statement: {_first_line(sql)}. Changes before this one were "
                        "applied and recorded; fix the cause and run `rtp deploy` again to "
                        "resume") from None
            _record(backend, change)
            done.append(change)
    return done


def deploy(project, backend, *, allow_destructive: bool = False) -> Plan:
    """Plan and apply in one call (``rtp serve``, ``rtp dev`` and ``rtp test`` use it).
    Returns the plan that was applied. Raises as :func:`plan` and :func:`apply`."""
    result = plan(project, backend)
    apply(result, backend, allow_destructive=allow_destructive)
    return result


def _record(backend, change: Change) -> None:
    try:
        if change.record is None:
            write_record(backend, Record(change.name, change.kind, ""), deleted=True)
            return
        live = read_live(backend).get(change.name)
        rec = change.record
        write_record(backend, Record(rec.name, rec.kind, rec.hash, rec.spec,
                                     live.hash if live else ""))
    except RtpError as exc:
        raise EngineError(f"{change.name} was deployed but recording it in the deploy "
                          f"state failed: {exc.message}", code="RTP503",
                          hint="run `rtp deploy` again; it adopts what exists") from None


def _first_line(sql: str) -> str:
    line = sql.strip().splitlines()[0]
    return line if len(line) < 120 else line[:117] + "..."
