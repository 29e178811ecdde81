"""Copy pipes: insert a pipe's ``SELECT`` results into its target datasource.

``run_copy`` runs one now (``rtp copy run NAME``); ``run_schedules`` runs every copy
pipe on its cron schedule until a stop event is set (``rtp serve`` starts it in a
thread). Mode ``append`` adds rows; ``replace`` swaps the target's contents while
holding the backend, so readers never see it half-empty through this backend.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable

from rtp.deploy.ddl import create_table
from rtp.errors import Problems, ProjectError, RtpError
from rtp.project.model import Project
from rtp.sql.compose import compile_project


def run_copy(project: Project, backend, name: str, values: dict | None = None) -> int:
    """Run copy pipe ``name``; returns the target's row count afterwards.
    Raises ProjectError RTP107 when ``name`` is not a copy pipe, QueryError from the engine."""
    pipe = project.pipes.get(name)
    if pipe is None or pipe.type != "copy":
        copies = ", ".join(p.name for p in project.pipes.values() if p.type == "copy")
        raise ProjectError(f"'{name}' is not a copy pipe", code="RTP107",
                           hint=f"copy pipes: {copies or 'none'}")
    compiled = compile_project(project, Problems())
    select = compiled.compose(name, {**compiled.sample_values(name), **(values or {})}).sql
    target = pipe.target
    with backend.exclusive():
        if pipe.mode == "replace":
            tmp = f"{target}__rtp_copy"
            backend.execute(f"DROP TABLE IF EXISTS `{tmp}`")
            backend.execute(create_table(project.datasources[target], name=tmp))
            backend.execute(f"INSERT INTO `{tmp}`\n{select}")
            backend.execute(f"RENAME TABLE `{target}` TO `{tmp}_old`, `{tmp}` TO `{target}`")
            backend.execute(f"DROP TABLE `{tmp}_old`")
        else:
            backend.execute(f"INSERT INTO `{target}`\n{select}")
        return int(backend.query(f"SELECT count() FROM `{target}`")[1][0][0])


def cron_matches(expr: str, when: dt.datetime) -> bool:
    """Whether a 5-field cron expression (minute hour day month weekday; ``*``, ``*/n``,
    ``a-b``, ``a,b``) matches ``when``. Raises ValueError for a malformed expression."""
    fields = expr.split()
    if len(fields) != 5:
        raise ValueError(f"cron needs 5 fields, got {len(fields)}: {expr!r}")
    now = (when.minute, when.hour, when.day, when.month, (when.weekday() + 1) % 7)
    ranges = ((0, 59), (0, 23), (1, 31), (1, 12), (0, 6))
    return all(_field(f, v, r) for f, v, r in zip(fields, now, ranges, strict=True))


def _field(text: str, value: int, bounds: tuple[int, int]) -> bool:
    for part in text.split(","):
        step = 1
        if "/" in part:
            part, step_text = part.split("/", 1)
            step = int(step_text)
        if part == "*":
            lo, hi = bounds
        elif "-" in part:
            lo, hi = (int(x) for x in part.split("-", 1))
        else:
            lo = hi = int(part)
        if bounds[0] == 0 and bounds[1] == 6 and hi == 7:  # 7 is Sunday too
            hi, value = 7, (7 if value == 0 and lo > 0 else value)
        if lo <= value <= hi and (value - lo) % step == 0:
            return True
    return False


def run_schedules(project: Project, backend, stop: threading.Event,
                  on_error: Callable[[str, RtpError], None] | None = None,
                  clock: Callable[[], dt.datetime] | None = None) -> None:
    """Run each scheduled copy pipe whenever its cron matches (checked once a minute,
    in UTC) until ``stop`` is set. Errors go to ``on_error`` and don't stop the loop."""
    clock = clock or (lambda: dt.datetime.now(dt.timezone.utc))
    scheduled = [p for p in project.pipes.values() if p.type == "copy" and p.schedule]
    last: dt.datetime | None = None
    while not stop.is_set():
        minute = clock().replace(second=0, microsecond=0)
        if minute != last:
            last = minute
            for pipe in scheduled:
                try:
                    if cron_matches(pipe.schedule, minute):
                        run_copy(project, backend, pipe.name)
                except (RtpError, ValueError) as exc:
                    if on_error is not None:
                        error = exc if isinstance(exc, RtpError) else ProjectError(
                            f"schedule of {pipe.name}: {exc}", code="RTP107")
                        on_error(pipe.name, error)
        stop.wait(1.0)
