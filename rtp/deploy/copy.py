"""Copy pipes: insert a pipe's ``SELECT`` results into its target datasource.

``run_copy`` runs one now (``rtp copy run NAME``, and :mod:`rtp.server.scheduler` when a
pipe's ``schedule`` fires while ``rtp serve`` runs). Mode ``append`` adds rows;
``replace`` fills a new table and swaps it in while holding the backend, so readers
never see the target half-empty through this backend (on a cluster: new node-local
tables, swapped ON CLUSTER). ``next_run`` reads a schedule
with croniter (validated at load time by :mod:`rtp.project.load`).
"""

from __future__ import annotations

import datetime as dt
import math
import uuid
from typing import TYPE_CHECKING

from croniter import croniter

from rtp.engine import QueryError, nested
from rtp.errors import EngineError, Problems, ProjectError, RtpError
from rtp.project.model import Datasource, Project
from rtp.sql.compose import CompiledProject, compile_project
from rtp.sql.ddl import create_distributed, create_table, local

if TYPE_CHECKING:
    from rtp.engine import Backend


def run_copy(
    project: Project,
    backend: Backend,
    name: str,
    values: dict | None = None,
    *,
    compiled: CompiledProject | None = None,
    timeout: float | None = None,
) -> int:
    """Run copy pipe ``name``; returns the target's row count afterwards.

    ``compiled`` is ``project`` compiled (the server passes its current one; compiled
    here when None). ``timeout`` is the engine's deadline for the copy's query
    (``max_execution_time``, seconds). Raises ProjectError RTP107 when ``name`` is not a
    copy pipe, EngineError RTP507 past ``timeout``, QueryError from the engine."""
    pipe = project.pipes.get(name)
    if pipe is None or pipe.type != "copy":
        copies = ", ".join(p.name for p in project.pipes.values() if p.type == "copy")
        raise ProjectError(
            f"'{name}' is not a copy pipe", code="RTP107", hint=f"copy pipes: {copies or 'none'}"
        )
    compiled = compiled or compile_project(project, Problems())
    values = {**compiled.sample_values(name), **(values or {})}
    select = compiled.compose(name, values, nested=nested(backend)).sql
    if timeout:
        # a second SETTINGS clause is valid after the user's own (rtp.query);
        # whole seconds: 18.16 refuses a Float64 here ("Bad get: has Float64")
        select += f"\nSETTINGS max_execution_time = {max(1, math.ceil(timeout))}"
    target = pipe.target
    if not target:  # the loader requires one; here for the type checker
        raise ProjectError(f"copy pipe '{name}' has no target", code="RTP107")
    try:
        # The copy's query runs like any insert (reads go on beside it); only a
        # replace's swap takes the exclusive hold, so no reader sees the target missing.
        if pipe.mode == "replace" and getattr(backend, "cluster", None):
            _replace_on_cluster(backend, project.datasources[target], select)
        elif pipe.mode == "replace":
            tmp = f"{target}__rtp_copy"
            # what a run killed midway left: its new table, or the old one after the swap
            for leftover in (tmp, f"{tmp}_old"):
                backend.execute(f"DROP TABLE IF EXISTS `{leftover}`")
            backend.execute(create_table(project.datasources[target], name=tmp))
            backend.execute(f"INSERT INTO `{tmp}`\n{select}")
            with backend.exclusive():
                backend.execute(f"RENAME TABLE `{target}` TO `{tmp}_old`, `{tmp}` TO `{target}`")
                backend.execute(f"DROP TABLE `{tmp}_old`")
        else:
            backend.execute(f"INSERT INTO `{target}`\n{select}")
        return int(backend.query(f"SELECT count() FROM `{target}`")[1][0][0])
    except QueryError as exc:
        if exc.ch_name == "TIMEOUT_EXCEEDED" or exc.ch_code == 159:  # 18.16: no name
            raise EngineError(
                f"copy pipe '{name}' took longer than {timeout:g} s",
                code="RTP507",
                hint="the engine stopped it; a replace kept "
                "the old rows, an append may have added some",
            ) from None
        raise


def run_scheduled(compiled: CompiledProject, backend: Backend) -> dict[str, int]:
    """Run once each copy pipe with a ``schedule`` (what ``rtp serve`` runs on its own),
    a copy reading another's target after it: ``rtp test`` after loading fixtures, the
    benchmark after loading its data. Returns pipe -> the target's rows. Raises what
    :func:`run_copy` raises, the message naming the pipe."""
    from rtp.deploy.plan import _tables_read

    pending = {
        p.name: p for p in compiled.project.pipes.values() if p.type == "copy" and p.schedule
    }
    done: dict[str, int] = {}
    while pending:
        ready = sorted(
            name
            for name in pending
            if not _tables_read(compiled, name)
            & {p.target for other, p in pending.items() if other != name}
        )
        for name in ready or sorted(pending)[:1]:  # a cycle: run in name order
            pending.pop(name)
            try:
                done[name] = run_copy(compiled.project, backend, name, compiled=compiled)
            except RtpError as exc:  # the engine's error, or a deadline: name the pipe
                exc.message = f"copy pipe '{name}': {exc.message}"
                raise
    return done


def _replace_on_cluster(backend: Backend, ds: Datasource, select: str) -> None:
    """A replace on a cluster: fresh Replicated tables and their Distributed table are
    filled, then the node-local tables are swapped ON CLUSTER (the target's Distributed
    table reads the swapped-in ones by name) and the old ones dropped."""
    spec = backend.spec()  # type: ignore[attr-defined]
    tmp, on = f"{ds.name}__rtp_copy", spec.on
    old = local(f"{tmp}_old")
    for name in (tmp, local(tmp), old):
        backend.execute(f"DROP TABLE IF EXISTS `{name}`{on}")
    backend.execute(create_table(ds, name=tmp, cluster=spec, nonce=uuid.uuid4().hex[:12]))
    backend.execute(create_distributed(tmp, spec, ds.shard_key))
    backend.execute(f"INSERT INTO `{tmp}`\n{select}")
    with backend.exclusive():
        backend.execute(
            f"RENAME TABLE `{local(ds.name)}` TO `{old}`, `{local(tmp)}` TO `{local(ds.name)}`{on}"
        )
        backend.execute(f"DROP TABLE `{tmp}`{on}")
        backend.execute(f"DROP TABLE `{old}`{on}")


def next_run(schedule: str, after: dt.datetime) -> dt.datetime:
    """The first time after ``after`` (aware, UTC) at which cron ``schedule`` fires:
    5 fields (minute hour day month weekday; names, ranges, lists, steps), a 6th for
    seconds (``* * * * * */10``), or ``@hourly``/``@daily``/``@weekly``/``@monthly``/
    ``@yearly``. Raises ValueError for an expression that is malformed or never fires."""
    try:
        when: dt.datetime = croniter(schedule, after).get_next(dt.datetime)
        return when
    except Exception as exc:  # croniter's errors derive from ValueError, or not (dates)
        raise ValueError(f"schedule {schedule!r}: {exc}") from None
