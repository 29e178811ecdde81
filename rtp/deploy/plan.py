"""Plan: the project model (desired) against the target (state table + live tables).

``plan(project, backend)`` only reads. Each :class:`Change` holds the exact statements
``apply`` will run, in dependency order: datasources that feed materialized views come
before the views' targets, tables before views, dropped views before dropped tables.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from rtp.deploy.ddl import _setting as setting_sql
from rtp.deploy.ddl import column_sql, create_materialized_view, create_table
from rtp.deploy.state import Live, Record, digest, read_live, read_state
from rtp.engine import require
from rtp.errors import Problems, SqlError
from rtp.project.model import Datasource, Pipe, Project
from rtp.sql.compose import CompiledProject, compile_project

if TYPE_CHECKING:
    from rtp.engine import Backend

NEW, OLD = "__rtp_new", "__rtp_old"  # suffixes of the tables a rebuild swaps in and out
_SYMBOL = {"create": "+", "alter": "~", "rebuild": "!", "recreate": "~", "drop": "-",
           "adopt": "=", "no-op": "="}


@dataclass
class Change:
    action: str  # create | alter | rebuild | recreate | adopt | drop | no-op
    kind: str  # table | view
    name: str
    reason: str = ""
    steps: list[str] = field(default_factory=list)
    destructive: bool = False
    record: Record | None = None  # what the state says after this change (None: dropped)

    def describe(self) -> str:
        flag = "  [destructive]" if self.destructive else ""
        why = f": {self.reason}" if self.reason else ""
        return f"{_SYMBOL[self.action]} {self.action} {self.kind} {self.name}{why}{flag}"


@dataclass
class Plan:
    target: str
    changes: list[Change] = field(default_factory=list)
    drift: list[str] = field(default_factory=list)

    @property
    def pending(self) -> list[Change]:
        return [c for c in self.changes if c.action != "no-op"]

    @property
    def destructive(self) -> list[Change]:
        return [c for c in self.changes if c.destructive]

    def render(self, *, sql: bool = False) -> str:
        """The plan as text for a terminal (``sql=True`` lists each statement too)."""
        lines = [f"Plan for {self.target}:"]
        for note in self.drift:
            lines.append(f"  drift: {note}")
        for change in self.changes:
            lines.append("  " + change.describe())
            if sql:
                lines += ["      " + s.replace("\n", "\n      ") + ";" for s in change.steps]
        counts: dict[str, int] = {}
        for change in self.pending:
            counts[change.action] = counts.get(change.action, 0) + 1
        summary = ", ".join(f"{n} {a}" for a, n in counts.items()) or "nothing to do"
        lines.append(f"{summary}.")
        return "\n".join(lines)


def plan(project: Project, backend: Backend) -> Plan:
    """What ``apply`` must do to bring ``backend`` to ``project``. Reads only.

    Raises SqlError when a materialized pipe can't be composed (run ``rtp check``) and
    EngineError RTP502 when the target's ClickHouse lacks a feature the project uses.
    """
    compiled = compile_project(project, Problems())
    state, live = read_state(backend), read_live(backend)
    result = Plan(target=f"{backend.name}:{backend.database}")
    order = _table_order(project, compiled)
    views = {p.name: p for p in project.pipes.values() if p.type == "materialized"}
    view_ddl = {name: _view_ddl(compiled, pipe) for name, pipe in views.items()}
    for pipe in views.values():
        if re.search(r"\bOVER\s*\(", view_ddl[pipe.name], re.I):
            require(backend, "window functions", f"pipe {pipe.name}")

    # views reading a table that is rebuilt must be dropped first and created again
    readers = {t: [v for v in views if t in _tables_read(compiled, v)] for t in order}
    recreate: set[str] = set()
    for name, rec in state.items():
        if rec.kind == "view" and name not in views:
            result.changes.append(Change("drop", "view", name, "pipe removed from project",
                                         [f"DROP TABLE IF EXISTS `{name}`"]))
    for name in order:
        ds = project.datasources[name]
        _check_features(backend, ds)
        change = _table_change(ds, state.get(name), live.get(name), result.drift)
        for step, feature in (("MODIFY TTL", "ALTER TABLE ... MODIFY TTL"),
                              ("MODIFY SETTING", "ALTER TABLE ... MODIFY SETTING")):
            if any(step in s for s in change.steps):
                require(backend, feature, f"datasource {name} ({ds.file})")
        if change.action == "rebuild":
            live_readers = [v for v in readers[name] if v in state and v in live]
            change.steps[:0] = [f"DROP TABLE IF EXISTS `{v}`" for v in live_readers]
            recreate.update(live_readers)
        result.changes.append(change)
    for name in sorted(views, key=lambda v: order.index(views[v].target)):
        result.changes.append(_view_change(views[name], view_ddl[name], state.get(name),
                                           live.get(name), project, name in recreate,
                                           result.drift))
    for name, rec in state.items():
        if rec.kind == "table" and name not in project.datasources:
            result.changes.append(Change("drop", "table", name,
                                         "datasource removed from project",
                                         [f"DROP TABLE IF EXISTS `{name}`"], destructive=True))
    return result


# -- tables ----------------------------------------------------------------------------


def spec_of(ds: Datasource) -> dict:
    return {
        "columns": [[c.name, c.type, column_sql(c)] for c in ds.columns],
        "engine": [ds.engine.type, [list(o) for o in ds.engine.options]],
        "keys": [list(ds.sorting_key), list(ds.primary_key), ds.partition_key],
        "ttl": ds.ttl,
        "settings": {k: v for k, v in ds.settings},
        "indexes": {i.name: f"{i.expr} TYPE {i.type} GRANULARITY {i.granularity}"
                    for i in ds.indexes},
    }


def _table_change(ds: Datasource, rec: Record | None, live: Live | None,
                  drift: list[str]) -> Change:
    ddl = create_table(ds)
    record = Record(ds.name, "table", digest(ddl), spec_of(ds))
    if live is None:
        if rec is not None:
            drift.append(f"table {ds.name} was dropped by hand")
        return Change("create", "table", ds.name, "new datasource" if rec is None
                      else "missing on the target", [ddl], record=record)
    if rec is None:
        if _same_columns(live.columns, ds):
            return Change("adopt", "table", ds.name, "exists with the same columns; "
                          "recorded in the deploy state", record=record)
        return _rebuild(ds, live, record, "exists but was not created by rtp and its "
                        "columns differ", destructive=True)
    if live.hash != rec.live_hash:
        drift.append(f"table {ds.name} was changed by hand{_column_drift(rec, live)}")
        return _rebuild(ds, live, record, "changed by hand; rebuilt from the project",
                        destructive=True)
    if rec.hash == record.hash:
        return Change("no-op", "table", ds.name, record=rec)
    old, new = rec.spec, record.spec
    if old.get("engine") != new["engine"] or old.get("keys") != new["keys"]:
        what = "engine" if old.get("engine") != new["engine"] else "sorting/primary/partition key"
        lost = old.get("engine") != new["engine"] or bool(_dropped_columns(old, new))
        return _rebuild(ds, live, record, f"{what} changed", destructive=lost)
    return _alter(ds, old, new, record)


def _alter(ds: Datasource, old: dict, new: dict, record: Record) -> Change:
    t = f"`{ds.name}`"
    steps, notes, destructive = [], [], False
    old_cols = {c[0]: c for c in old.get("columns", [])}
    new_cols = {c[0]: c for c in new["columns"]}
    for name in _dropped_columns(old, new):
        steps.append(f"ALTER TABLE {t} DROP COLUMN `{name}`")
        notes.append(f"drop column {name}")
        destructive = True
    previous = None
    for name, col in new_cols.items():
        if name not in old_cols:
            after = f" AFTER `{previous}`" if previous else " FIRST"
            steps.append(f"ALTER TABLE {t} ADD COLUMN {col[2]}{after}")
            notes.append(f"add column {name}")
        elif old_cols[name][2] != col[2]:
            steps.append(f"ALTER TABLE {t} MODIFY COLUMN {col[2]}")
            notes.append(f"modify column {name}")
            destructive = destructive or old_cols[name][1] != col[1]
        previous = name
    old_idx, new_idx = old.get("indexes", {}), new["indexes"]
    for name in old_idx:
        if name not in new_idx or old_idx[name] != new_idx[name]:
            steps.append(f"ALTER TABLE {t} DROP INDEX `{name}`")
    for name, text in new_idx.items():
        if name not in old_idx or old_idx[name] != text:
            steps.append(f"ALTER TABLE {t} ADD INDEX `{name}` {text}")
            notes.append(f"index {name}")
    if old.get("ttl") != new["ttl"]:
        steps.append(f"ALTER TABLE {t} MODIFY TTL {new['ttl']}" if new["ttl"]
                     else f"ALTER TABLE {t} REMOVE TTL")
        notes.append("TTL")
        destructive = True  # a new or shorter TTL deletes rows
    old_set, new_set = old.get("settings", {}), new["settings"]
    changed = {k: v for k, v in new_set.items() if old_set.get(k) != v}
    if changed:
        steps.append(f"ALTER TABLE {t} MODIFY SETTING "
                     + ", ".join(f"{k} = {setting_sql(v)}" for k, v in changed.items()))
    removed = [k for k in old_set if k not in new_set]
    if removed:
        steps.append(f"ALTER TABLE {t} RESET SETTING {', '.join(removed)}")
    if changed or removed:
        notes.append("settings")
    if not steps:  # only formatting of the DDL changed
        return Change("adopt", "table", ds.name, "equivalent definition", record=record)
    return Change("alter", "table", ds.name, ", ".join(notes), steps, destructive, record)


def _rebuild(ds: Datasource, live: Live, record: Record, reason: str, *,
             destructive: bool) -> Change:
    """New table, copy the columns both have, swap names, drop the old one."""
    name = ds.name
    common = [f"`{c.name}`" for c in ds.columns if c.name in dict(live.columns)]
    steps = [f"DROP TABLE IF EXISTS `{name}{NEW}`", f"DROP TABLE IF EXISTS `{name}{OLD}`",
             create_table(ds, name=f"{name}{NEW}")]
    if common:
        cols = ", ".join(common)
        steps.append(f"INSERT INTO `{name}{NEW}` ({cols}) SELECT {cols} FROM `{name}`")
    steps += [f"RENAME TABLE `{name}` TO `{name}{OLD}`, `{name}{NEW}` TO `{name}`",
              f"DROP TABLE IF EXISTS `{name}{OLD}`"]
    return Change("rebuild", "table", name, reason, steps, destructive, record)


def _dropped_columns(old: dict, new: dict) -> list[str]:
    names = {c[0] for c in new["columns"]}
    return [c[0] for c in old.get("columns", []) if c[0] not in names]


def _same_columns(columns: tuple[tuple[str, str], ...], ds: Datasource) -> bool:
    def norm(t: str) -> str:
        return re.sub(r"\s+", "", t)

    return [(n, norm(t)) for n, t in columns] == [(c.name, norm(c.type)) for c in ds.columns]


def _column_drift(rec: Record, live: Live) -> str:
    deployed = {c[0]: re.sub(r"\s+", "", c[1]) for c in rec.spec.get("columns", [])}
    now = {n: re.sub(r"\s+", "", t) for n, t in live.columns}
    notes = [f"column {n} added" for n in now if n not in deployed]
    notes += [f"column {n} removed" for n in deployed if n not in now]
    notes += [f"column {n} is {now[n]}, deployed as {deployed[n]}" for n in now
              if n in deployed and now[n] != deployed[n]]
    return f" ({'; '.join(notes)})" if notes else " (its definition differs)"


def _check_features(backend: Backend, ds: Datasource) -> None:
    where = f"datasource {ds.name} ({ds.file})"
    if any("DateTime64" in c.type for c in ds.columns):
        require(backend, "DateTime64", where)
    if ds.ttl:
        require(backend, "table TTL", where)
    if ds.indexes:
        require(backend, "data skipping indexes", where)


def _table_order(project: Project, compiled: CompiledProject) -> list[str]:
    """Datasources, each after the ones whose materialized views feed it."""
    compiled_reads: dict[str, set[str]] = {}
    for pipe in project.pipes.values():
        if pipe.type == "materialized" and pipe.target and pipe.name not in compiled.broken:
            compiled_reads.setdefault(pipe.target, set()).update(
                _tables_read(compiled, pipe.name))
    order: list[str] = []

    def visit(name: str, path: tuple = ()) -> None:
        if name in order or name in path:
            return
        for dep in sorted(compiled_reads.get(name, ())):
            if dep != name:
                visit(dep, (*path, name))
        order.append(name)

    for name in sorted(project.datasources):
        visit(name)
    return order


# -- materialized views ------------------------------------------------------------------


def _view_ddl(compiled: CompiledProject, pipe: Pipe) -> str:
    if pipe.name in compiled.broken:
        raise SqlError(f"materialized pipe '{pipe.name}' has errors", code="RTP304",
                       hint="run `rtp check` and fix them before deploying")
    select = compiled.compose(pipe.name, compiled.sample_values(pipe.name)).sql
    return create_materialized_view(pipe.name, pipe.target, select)


def _select_of(ddl: str) -> str:
    return ddl.split("\nAS\n", 1)[1]


def _backfill(table: str, ddl: str, target: Datasource) -> str:
    """``INSERT INTO table (the view's output columns) <the view's query>``: a view fills
    its target by column name, an INSERT by position, so the columns are named (a target
    with more columns than the view produces takes their defaults)."""
    import sqlglot

    select = _select_of(ddl)
    try:
        names = sqlglot.parse_one(select, read="clickhouse").named_selects
    except sqlglot.errors.SqlglotError:
        names = []
    known = {c.name for c in target.columns}
    if names and "*" not in names and set(names) <= known and len(set(names)) == len(names):
        return f"INSERT INTO `{table}` ({', '.join(f'`{n}`' for n in names)})\n{select}"
    return f"INSERT INTO `{table}`\n{select}"


def _tables_read(compiled: CompiledProject, pipe_name: str) -> set[str]:
    names: set[str] = set()
    for name in [*compiled.pipes_read(pipe_name), pipe_name]:
        names.update(r for r in compiled.pipes[name].reads
                     if r in compiled.project.datasources)
    return names


def _view_change(pipe: Pipe, ddl: str, rec: Record | None, live: Live | None,
                 project: Project, dropped: bool, drift: list[str]) -> Change:
    name, target = pipe.name, pipe.target
    record = Record(name, "view", digest(ddl), {"target": target, "populate": pipe.populate})
    if rec is None and live is not None and live.engine == "MaterializedView":
        # e.g. a deploy stopped before recording it: whether its backfill ran is unknown,
        # so with populate the target is rebuilt from the source
        if pipe.populate:
            return _rebuild_target(pipe, ddl, project, record,
                                   "exists but is not in the deploy state; "
                                   f"{target} rebuilt from the source")
        return Change("recreate", "view", name, "exists but is not in the deploy state",
                      [f"DROP TABLE IF EXISTS `{name}`", ddl], record=record)
    if rec is None or live is None:
        if rec is not None:
            drift.append(f"view {name} was dropped by hand")
            if pipe.populate:
                # its target holds the view's rows up to the drop and misses those since:
                # backfilling on top would count the old ones twice
                return _rebuild_target(pipe, ddl, project, record,
                                       f"missing on the target; {target} rebuilt from "
                                       "the source")
        if not pipe.populate:
            return Change("create", "view", name, f"materialized pipe -> {target}",
                          [ddl], record=record)
        return _backfill_target(pipe, ddl, project, record)
    if live.hash != rec.live_hash:
        drift.append(f"view {name} was changed by hand")
    if rec.hash == record.hash and live.hash == rec.live_hash:
        if dropped:
            return Change("recreate", "view", name, "a table it reads is rebuilt", [ddl],
                          record=record)
        return Change("no-op", "view", name, record=rec)
    what = "query changed" if rec.hash != record.hash else "changed by hand"
    if not pipe.populate:
        return Change("recreate", "view", name, f"{what}; rows from now on use the "
                      "project's query", [f"DROP TABLE IF EXISTS `{name}`", ddl],
                      record=record)
    return _rebuild_target(pipe, ddl, project, record,
                           f"{what}; {target} rebuilt from the source")


def _rebuild_target(pipe: Pipe, ddl: str, project: Project, record: Record,
                    reason: str) -> Change:
    """Fill a new target from the source with the view's query, swap it in, and attach
    the view to it (all under the backend's exclusive hold, see apply)."""
    name, target = pipe.name, pipe.target
    new = f"{target}{NEW}"
    steps = [f"DROP TABLE IF EXISTS `{new}`", f"DROP TABLE IF EXISTS `{target}{OLD}`",
             create_table(project.datasources[target], name=new),
             _backfill(new, ddl, project.datasources[target]),
             f"DROP TABLE IF EXISTS `{name}`",
             f"RENAME TABLE `{target}` TO `{target}{OLD}`, `{new}` TO `{target}`",
             ddl, f"DROP TABLE IF EXISTS `{target}{OLD}`"]
    return Change("rebuild", "view", name, reason, steps, record=record)


def _backfill_target(pipe: Pipe, ddl: str, project: Project, record: Record) -> Change:
    """A new view with populate: a fresh copy of its target gets the target's rows and
    the backfill, is swapped in, and the view attached. A backfill killed half-way
    leaves rows only in the fresh table, which a resumed deploy drops and fills again
    (see rtp.deploy.journal): the target never holds a row twice."""
    name, target = pipe.name, pipe.target
    new = f"{target}{NEW}"
    cols = ", ".join(f"`{c.name}`" for c in project.datasources[target].columns)
    steps = [f"DROP TABLE IF EXISTS `{new}`", f"DROP TABLE IF EXISTS `{target}{OLD}`",
             create_table(project.datasources[target], name=new),
             f"INSERT INTO `{new}` ({cols}) SELECT {cols} FROM `{target}`",
             _backfill(new, ddl, project.datasources[target]),
             f"RENAME TABLE `{target}` TO `{target}{OLD}`, `{new}` TO `{target}`",
             ddl, f"DROP TABLE IF EXISTS `{target}{OLD}`"]
    return Change("create", "view", name, f"materialized pipe -> {target}, backfilled",
                  steps, record=record)
