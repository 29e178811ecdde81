"""Scheduled copy pipes inside ``rtp serve``: each copy pipe with a ``schedule`` runs
whenever its cron fires (UTC).

One thread, ``rtp-scheduler``, sleeps until the next fire time of any pipe; each run
gets its own thread so a slow copy doesn't delay another pipe's. Rules:

* every run reads the server's current compiled project (``state.compiled``, swapped by
  ``rtp dev`` and ``POST /v0/deploy``): a schedule added, changed or removed by a
  redeploy takes effect from its next fire time;
* a pipe whose previous run is still going when its cron fires again is not started a
  second time (the skipped fire is counted and logged);
* a failure is logged with the pipe and the error and kept as ``last_error``; the next
  fire time simply runs it again;
* every copy runs with the engine's deadline ``copy_timeout`` (``max_execution_time``);
  :meth:`Scheduler.stop` starts nothing new and waits for running copies, which end by
  themselves or at their deadline, so ``rtp serve`` exits cleanly on SIGTERM.

A pipe whose target is empty when the scheduler first sees it (at start, or brought in
by a deploy), or after any deploy (which may have rebuilt the target), runs right away,
so its readers don't answer from nothing until the next fire. Otherwise a missed fire
(the process was suspended, or a run outlasted several fires) is not caught up: the
pipe runs once, at the next fire time from now.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from rtp.deploy.copy import next_run, run_copy
from rtp.errors import RtpError

log = logging.getLogger("rtp.scheduler")


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


@dataclass
class Job:
    """One scheduled copy pipe: what /healthz reports about it."""

    pipe: str
    schedule: str
    next_run: dt.datetime
    running: threading.Thread | None = None
    last_start: dt.datetime | None = None
    last_end: dt.datetime | None = None
    last_seconds: float | None = None
    last_rows: int | None = None  # the target's row count after the last good run
    last_error: str | None = None  # None after a good run
    runs: int = 0
    failures: int = 0
    skipped: int = 0  # fires that came while the previous run was still going

    def status(self) -> dict:
        def iso(when: dt.datetime | None) -> str | None:
            return when.isoformat(timespec="seconds") if when else None

        return {
            "schedule": self.schedule,
            "running": self.running is not None,
            "next_run": iso(self.next_run),
            "last_run": iso(self.last_start),
            "last_seconds": self.last_seconds,
            "last_rows": self.last_rows,
            "last_error": self.last_error,
            "runs": self.runs,
            "failures": self.failures,
            "skipped": self.skipped,
        }


class Scheduler:
    """Runs ``state``'s scheduled copy pipes from :meth:`start` to :meth:`stop`.
    ``state`` is the app's ServerState (``compiled``, ``backend``)."""

    def __init__(self, state, *, timeout: float, clock: Callable[[], dt.datetime] = utcnow) -> None:
        if timeout <= 0:
            raise ValueError("copy_timeout must be > 0")
        self.state = state
        self.timeout = timeout
        self.clock = clock
        self.jobs: dict[str, Job] = {}
        self._lock = threading.Lock()  # jobs: the loop, run threads and /healthz
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._compiled: object = None  # the build refresh() last looked at

    def start(self) -> None:
        self.refresh()
        self._thread = threading.Thread(target=self._loop, name="rtp-scheduler", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Start nothing more; wait for the loop and for running copies (each ends by
        itself or at its engine deadline, ``timeout`` seconds after it started)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        with self._lock:
            running = [(job.pipe, job.running) for job in self.jobs.values() if job.running]
        for pipe, thread in running:
            log.warning("waiting for copy pipe '%s' to finish (at most %g s)", pipe, self.timeout)
            thread.join(self.timeout + 5)  # the engine stops it at the deadline

    def status(self) -> dict[str, dict]:
        with self._lock:
            return {name: job.status() for name, job in sorted(self.jobs.items())}

    def refresh(self) -> None:
        """Follow the current project: new scheduled pipes, changed or removed
        schedules (a running copy of a removed pipe finishes)."""
        compiled = self.state.compiled
        project = compiled.project
        wanted = {
            p.name: p.schedule for p in project.pipes.values() if p.type == "copy" and p.schedule
        }
        # a new pipe, or any after a deploy (it may have rebuilt a target), is checked
        fresh = compiled is not self._compiled
        with self._lock:
            look = [name for name in wanted if fresh or name not in self.jobs]
        empty = {name for name in look if self._target_empty(project.pipes[name].target)}
        self._compiled = compiled
        now = self.clock()
        with self._lock:
            for name in list(self.jobs):
                if name not in wanted and self.jobs[name].running is None:
                    del self.jobs[name]
            for name, schedule in wanted.items():
                job = self.jobs.get(name)
                if job is not None and name in empty and job.running is None:
                    job.next_run = now  # emptied by a deploy: filled now
                if job is not None and job.schedule == schedule:
                    continue
                try:
                    when = next_run(schedule, now)
                except ValueError as exc:  # load_project rejects these; be safe anyway
                    log.error("copy pipe '%s' not scheduled: %s", name, exc)
                    continue
                if job is None:
                    # an empty target is filled now, not at the first fire (a minute or
                    # an hour away): at start, and when a deploy brings the pipe in
                    self.jobs[name] = Job(name, schedule, now if name in empty else when)
                else:
                    job.schedule, job.next_run = schedule, now if name in empty else when

    def _target_empty(self, target: str | None) -> bool:
        try:
            _, rows = self.state.backend.query(f"SELECT count() FROM `{target}`")
            return int(rows[0][0]) == 0
        except Exception as exc:  # noqa: BLE001 — no catch-up then; the schedule still runs
            log.warning("copy target '%s' could not be counted: %s", target, exc)
            return False

    def tick(self) -> float:
        """Start every pipe whose fire time has come; returns seconds until the next."""
        self.refresh()
        now = self.clock()
        with self._lock:
            for job in self.jobs.values():
                if job.next_run > now:
                    continue
                if job.running is not None:
                    job.skipped += 1
                    log.warning(
                        "copy pipe '%s': still running since %s, not started again",
                        job.pipe,
                        job.last_start.isoformat(timespec="seconds"),
                    )
                elif job.pipe in self.state.compiled.project.pipes:
                    job.running = threading.Thread(
                        target=self._run, args=(job,), name=f"rtp-copy-{job.pipe}", daemon=True
                    )
                    job.last_start = now
                    job.running.start()
                try:
                    job.next_run = next_run(job.schedule, now)
                except ValueError:  # validated at load time; stop trying
                    job.next_run = dt.datetime.max.replace(tzinfo=dt.timezone.utc)
            upcoming = min((job.next_run for job in self.jobs.values()), default=None)
        if upcoming is None:
            return 1.0
        # wake at least once a second: a redeploy may add or change a schedule
        return max(0.0, min(1.0, (upcoming - self.clock()).total_seconds()))

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                wait = self.tick()
            except Exception:  # never let one bad round stop scheduling
                log.exception("scheduler round failed")
                wait = 1.0
            self._stop.wait(wait)

    def _run(self, job: Job) -> None:
        compiled = self.state.compiled  # the project served now, reloads included
        started = time.monotonic()
        rows = error = None
        try:
            rows = run_copy(
                compiled.project,
                self.state.backend,
                job.pipe,
                compiled=compiled,
                timeout=self.timeout,
            )
        except RtpError as exc:
            error = f"{exc.code} {exc.message}"
        except Exception as exc:  # a bug must not kill the schedule either
            log.exception("copy pipe '%s' failed", job.pipe)
            error = f"RTP500 {type(exc).__name__}: {exc}"
        seconds = round(time.monotonic() - started, 3)
        with self._lock:
            job.running = None
            job.last_end, job.last_seconds, job.last_error = self.clock(), seconds, error
            if error is None:
                job.runs, job.last_rows = job.runs + 1, rows
            else:
                job.failures += 1
        if error is None:
            log.info("copy pipe '%s': %s rows in the target after %.3f s", job.pipe, rows, seconds)
        elif self._stop.is_set():
            log.error("copy pipe '%s' failed while the server stops: %s", job.pipe, error)
        else:
            log.error(
                "copy pipe '%s' failed (runs again at %s): %s",
                job.pipe,
                job.next_run.isoformat(timespec="seconds"),
                error,
            )
