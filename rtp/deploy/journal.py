"""The deploy journal: a deploy's full list of steps, written to the target before any
runs, and each step noted before it runs, so a deploy killed at any point is finished
by the next one from the journal (not re-planned from a state that lost information).

``_rtp_journal`` sits next to the state table (MergeTree, append-only, one table on both
backends). Rows per deploy id: one ``plan`` (every change with its statements and the
record the state gets after it), one ``step`` before each step, one ``done`` at the end.
A deploy id without ``done`` is unfinished: :func:`resume` runs what is left, from the
step that was running when the process died. Only that step can be half done, so only
it runs guarded (see :func:`_run_guarded`); a step that fills a fresh ``__rtp_new``
table restarts from the step that drops that table, so a backfill never doubles.

Test hook: ``RTP_TEST_DEPLOY_CRASH_AFTER=<n>`` makes the process ``os._exit(137)``
right after its n-th step (statement or state record) and ``RTP_TEST_DEPLOY_PAUSE_AFTER
=<n>`` makes it print ``rtp-test: paused`` to stderr and sleep (to be killed with
SIGKILL). Both are read only when set; the crash tests use them.
"""

from __future__ import annotations

import json
import os
import re
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from rtp.deploy.state import Record, own_ddl
from rtp.engine import QueryError
from rtp.sql.escape import quote_string

if TYPE_CHECKING:
    from rtp.deploy.plan import Change
    from rtp.engine import Backend

JOURNAL_TABLE = "_rtp_journal"
JOURNAL_COLUMNS = (
    "deploy_id String, seq UInt32, kind String, body String, at DateTime, version UInt64"
)
RECORD = "-- record in the deploy state"  # the pseudo-step after each change's statements
_ON = r"(?: ON CLUSTER `[^`]+`)?"  # rtp's statements on a cluster end with it
# a fresh table filled by the steps after its DROP: a plain deploy's rebuild copy, or a
# staged version's table (rtp.deploy.stage)
_NEW_DROP = re.compile(rf"DROP TABLE IF EXISTS `([^`]+__rtp_(?:new|stage))`{_ON}$")
_CREATE = re.compile(r"CREATE (?:TABLE|MATERIALIZED VIEW) (?:IF NOT EXISTS )?`([^`]+)`")
_DROP = re.compile(rf"DROP TABLE (?:IF EXISTS )?`([^`]+)`({_ON})$")
_PAIR = re.compile(r"`([^`]+)` TO `([^`]+)`")
# ClickHouse's answers to an ALTER that already ran: DUPLICATE_COLUMN, NOT_FOUND_COLUMN,
# NO_SUCH_COLUMN_IN_TABLE, ILLEGAL_COLUMN (18.16 and 26.x), BAD_ARGUMENTS (index)
_ALTER_DONE = {15, 10, 16, 44, 36}
_steps_run = 0  # steps this process ran, for the test hook


def changes_to_json(changes: list[Change]) -> list[dict[str, Any]]:
    """Changes as the journal's plan row stores them: words as plain text."""
    return [
        {
            "action": c.action.value,
            "kind": c.kind.value,
            "name": c.name,
            "reason": c.reason,
            "steps": list(c.steps),
            "destructive": c.destructive,
            "record": None
            if c.record is None
            else {
                "name": c.record.name,
                "kind": str(c.record.kind),
                "hash": c.record.hash,
                "spec": c.record.spec,
            },
        }
        for c in changes
    ]


def changes_from_json(data: list[dict[str, Any]]) -> list[Change]:
    from rtp.deploy.plan import Action, Change, Kind

    return [
        Change(
            Action(d["action"]),
            Kind(d["kind"]),
            d["name"],
            d["reason"],
            list(d["steps"]),
            d["destructive"],
            None
            if d["record"] is None
            else Record(
                d["record"]["name"], d["record"]["kind"], d["record"]["hash"], d["record"]["spec"]
            ),
        )
        for d in data
    ]


def ops(changes: list[Change]) -> list[tuple[int, int, str]]:
    """Every step of a deploy in order: (change index, step index, statement), each
    change's statements followed by its RECORD pseudo-step."""
    out = []
    for ci, change in enumerate(changes):
        out += [(ci, si, sql) for si, sql in enumerate(change.steps)]
        out.append((ci, len(change.steps), RECORD))
    return out


class Journal:
    """Writes one deploy's rows. ``begin`` before anything runs, ``step`` before each."""

    def __init__(self, backend: Backend, deploy_id: str | None = None) -> None:
        self.backend = backend
        self.id = deploy_id or uuid.uuid4().hex[:16]

    def _write(self, seq: int, kind: str, body: dict) -> None:
        self.backend.insert_json(
            JOURNAL_TABLE,
            [
                {
                    "deploy_id": self.id,
                    "seq": seq,
                    "kind": kind,
                    "body": json.dumps(body, sort_keys=True),
                    "version": time.time_ns(),
                    "at": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime()),
                }
            ],
        )

    def begin(self, target: str, changes: list[Change]) -> None:
        if not _exists(self.backend, JOURNAL_TABLE):
            self.backend.execute(
                own_ddl(self.backend, JOURNAL_TABLE, JOURNAL_COLUMNS, "(deploy_id, seq)")
            )
        self._write(0, "plan", {"target": target, "changes": changes_to_json(changes)})

    def step(self, seq: int, change: Change, ci: int, si: int, sql: str) -> None:
        self._write(
            seq, "step", {"change": ci, "step": si, "what": change.describe(), "statement": sql}
        )

    def finish(self) -> None:
        self._write(0, "done", {})


@dataclass
class Unfinished:
    """A deploy that started and never wrote ``done``."""

    deploy_id: str
    started_at: str
    target: str
    changes: list  # Change objects, as planned
    last: int  # seq of the step that was running (0: none had started)

    def remaining(self) -> list[tuple[int, int, str]]:
        all_ops = ops(self.changes)
        return all_ops[max(self.last - 1, 0) :]

    def describe(self) -> str:
        all_ops = ops(self.changes)
        lines = [
            f"unfinished deploy {self.deploy_id} (started {self.started_at} UTC, "
            f"{len(self.changes)} change(s), {len(all_ops)} steps)"
        ]
        if self.last:
            ci, si, sql = all_ops[self.last - 1]
            change = self.changes[ci]
            lines.append(
                f"  stopped at step {self.last} of {len(all_ops)}: "
                f"{change.describe()}, step {si + 1} of {len(change.steps) + 1}: "
                f"{_first_line(sql)}"
            )
        else:
            lines.append("  stopped before its first step")
        left = {ci for ci, _, _ in self.remaining()}
        lines += ["  to finish: " + self.changes[ci].describe() for ci in sorted(left)]
        return "\n".join(lines)


def find_unfinished(backend: Backend) -> Unfinished | None:
    """The oldest deploy of the target that never finished, or None. Reads only."""
    _, exists = backend.query(
        "SELECT name FROM system.tables WHERE database = currentDatabase() "
        f"AND name = {quote_string(JOURNAL_TABLE)}"
    )
    if not exists:
        return None
    _, rows = backend.query(
        f"SELECT deploy_id, toString(min(at)) FROM `{JOURNAL_TABLE}` GROUP BY deploy_id "
        "HAVING countIf(kind = 'done') = 0 AND countIf(kind = 'plan') = 1 "
        "ORDER BY min(version) LIMIT 1"
    )
    if not rows:
        return None
    deploy_id, started = rows[0]
    _, rows = backend.query(
        f"SELECT kind, seq, body FROM `{JOURNAL_TABLE}` WHERE deploy_id = "
        f"{quote_string(deploy_id)} ORDER BY version"
    )
    plan_body = next(json.loads(b) for k, _, b in rows if k == "plan")
    steps = [int(s) for k, s, _ in rows if k == "step"]
    return Unfinished(
        deploy_id,
        started,
        plan_body["target"],
        changes_from_json(plan_body["changes"]),
        steps[-1] if steps else 0,
    )


def run(
    backend: Backend,
    journal: Journal,
    changes: list[Change],
    start: int,
    *,
    guard_first: bool,
    record: Callable,
    progress: Callable | None = None,
) -> None:
    """Run ``ops(changes)[start:]``, journaling each step before it runs; ``record``
    writes a change's state row. Raises QueryError from the engine (see apply)."""
    all_ops = ops(changes)
    announced = None
    for seq, (ci, si, sql) in enumerate(all_ops[start:], start + 1):
        change = changes[ci]
        if progress is not None and announced != ci:
            progress(change)
            announced = ci
        journal.step(seq, change, ci, si, sql)
        if sql == RECORD:
            record(backend, change)
        elif guard_first and seq == start + 1:
            _run_guarded(backend, sql)
        else:
            try:
                backend.execute(sql)
            except QueryError as exc:
                exc.step = (ci, si)
                raise
        after_step()


def restart_point(changes: list[Change], last: int) -> tuple[int, bool]:
    """Where to resume a deploy whose step ``last`` (1-based seq) was running: (index
    into ops to start from, whether that first step must run guarded)."""
    if not last:
        return 0, False
    all_ops = ops(changes)
    ci, si, _ = all_ops[last - 1]
    steps = changes[ci].steps
    # a step between "DROP TABLE IF EXISTS x__rtp_new" and the RENAME that swaps x__rtp_new
    # in only touches leftovers and the fresh table: start again from that DROP, so a
    # half-done (or done) backfill into x__rtp_new is thrown away, never doubled
    for d in range(min(si, len(steps) - 1), -1, -1):
        if _NEW_DROP.match(steps[d]):
            rename = next(
                (r for r in range(d + 1, len(steps)) if steps[r].startswith("RENAME TABLE")),
                len(steps),
            )
            if si < rename:
                return all_ops.index((ci, d, steps[d])), False
            break
    return last - 1, True


def _run_guarded(backend: Backend, sql: str) -> None:
    """Run a step that may already have run, wholly or in part, before a crash."""
    if sql.startswith("CREATE "):
        m = _CREATE.match(sql)
        if m and _exists(backend, m.group(1)):
            return
        backend.execute(sql)
    elif sql.startswith("DROP TABLE "):
        m = _DROP.match(sql)
        backend.execute(f"DROP TABLE IF EXISTS `{m.group(1)}`{m.group(2)}" if m else sql)
    elif sql.startswith("RENAME TABLE "):
        # our renames are "x TO x__rtp_old, x__rtp_new TO x" and the destination of each
        # pair was dropped earlier in the change: a destination that exists was renamed
        on = re.search(rf"{_ON}$", sql).group(0)  # type: ignore[union-attr]
        for src, dst in _PAIR.findall(sql):
            if not _exists(backend, dst) and _exists(backend, src):
                backend.execute(f"RENAME TABLE `{src}` TO `{dst}`{on}")
    elif sql.startswith("ALTER TABLE "):
        try:
            backend.execute(sql)
        except QueryError as exc:
            if exc.ch_code not in _ALTER_DONE:
                raise
    else:
        backend.execute(sql)


def _exists(backend: Backend, name: str) -> bool:
    return bool(
        backend.query(
            "SELECT 1 FROM system.tables WHERE database = currentDatabase() "
            f"AND name = {quote_string(name)}"
        )[1]
    )


def after_step() -> None:
    """The test hook (module doc): crash or pause after the n-th step of this process."""
    global _steps_run
    _steps_run += 1
    crash = os.environ.get("RTP_TEST_DEPLOY_CRASH_AFTER")
    if crash and _steps_run == int(crash):
        os._exit(137)
    pause = os.environ.get("RTP_TEST_DEPLOY_PAUSE_AFTER")
    if pause and _steps_run == int(pause):
        print("rtp-test: paused", file=sys.stderr, flush=True)
        time.sleep(600)


def _first_line(sql: str) -> str:
    line = sql.strip().splitlines()[0]
    return line if len(line) < 100 else line[:97] + "..."
