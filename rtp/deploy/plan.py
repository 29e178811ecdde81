"""Plan: the project model (desired) against the target (state table + live tables).

``plan(project, backend)`` only reads. Each :class:`Change` holds the exact statements
``apply`` will run, in dependency order: datasources that feed materialized views come
before the views' targets, tables before views, dropped views before dropped tables.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from typing import TYPE_CHECKING, Any

from rtp.deploy.state import Live, Record, digest, read_live, read_state
from rtp.engine import nested, require
from rtp.errors import Problems, SqlError
from rtp.project.model import Datasource, Pipe, Project
from rtp.sql.compose import CompiledProject, compile_project
from rtp.sql.ddl import (
    TABLE_PARTS,
    column_sql,
    create_materialized_view,
    create_table,
    part_spec,
)
from rtp.sql.ddl import _setting as setting_sql

if TYPE_CHECKING:
    from rtp.engine import Backend

NEW, OLD = "__rtp_new", "__rtp_old"  # suffixes of the tables a rebuild swaps in and out


class _Word(str, Enum):
    """A plan word: compares, hashes, formats and serializes (json, the journal) as its
    text, so rendered plans and journal rows read as they did when these were strings."""

    def __str__(self) -> str:
        return str(self.value)

    def __format__(self, spec: str) -> str:
        return format(str(self.value), spec)


class Action(_Word):
    CREATE = "create"
    ALTER = "alter"
    REBUILD = "rebuild"
    RECREATE = "recreate"
    ADOPT = "adopt"
    DROP = "drop"
    NO_OP = "no-op"

    @property
    def symbol(self) -> str:
        return _SYMBOL[self]


class Kind(_Word):
    TABLE = "table"
    VIEW = "view"


_SYMBOL = {
    Action.CREATE: "+",
    Action.ALTER: "~",
    Action.REBUILD: "!",
    Action.RECREATE: "~",
    Action.DROP: "-",
    Action.ADOPT: "=",
    Action.NO_OP: "=",
}


@dataclass
class Change:
    action: Action
    kind: Kind
    name: str
    reason: str = ""
    steps: list[str] = field(default_factory=list)
    destructive: bool = False
    record: Record | None = None  # what the state says after this change (None: dropped)

    def describe(self) -> str:
        flag = "  [destructive]" if self.destructive else ""
        why = f": {self.reason}" if self.reason else ""
        return f"{self.action.symbol} {self.action} {self.kind} {self.name}{why}{flag}"


@dataclass
class Plan:
    target: str
    changes: list[Change] = field(default_factory=list)
    drift: list[str] = field(default_factory=list)
    down: list[str] = field(default_factory=list)  # a cluster's nodes that can't take DDL

    @property
    def pending(self) -> list[Change]:
        return [c for c in self.changes if c.action != Action.NO_OP]

    @property
    def destructive(self) -> list[Change]:
        return [c for c in self.changes if c.destructive]

    def render(self, *, sql: bool = False) -> str:
        """The plan as text for a terminal (``sql=True`` lists each statement too)."""
        lines = [f"Plan for {self.target}:"]
        for node in self.down:
            lines.append(f"  down: node {node}; nothing is applied until it is back")
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


def plan(project: Project, backend: Backend, *, compiled: CompiledProject | None = None) -> Plan:
    """What ``apply`` must do to bring ``backend`` to ``project`` (``compiled``: the
    project already compiled, see rtp.ops.build). Reads only.

    Raises SqlError when a materialized pipe can't be composed (run ``rtp check``) and
    EngineError RTP502 when the target's ClickHouse lacks a feature the project uses.
    """
    if compiled is None:
        compiled = compile_project(project, Problems())
    state, live = read_state(backend), read_live(backend)
    cluster = getattr(backend, "cluster", None)
    where = f" on cluster {cluster}" if cluster else ""
    result = Plan(target=f"{backend.name}:{backend.database}{where}")
    result.down = list(getattr(backend, "down", []))
    order = _table_order(project, compiled)
    views = {p.name: p for p in project.pipes.values() if p.type == "materialized"}
    form = nested(backend)
    desired = {name: _desired_view(compiled, pipe, form) for name, pipe in views.items()}
    for pipe in views.values():
        if re.search(r"\bOVER\s*\(", desired[pipe.name].select, re.I):
            require(backend, "window functions", f"pipe {pipe.name}")

    # views reading a table that is rebuilt must be dropped first and created again
    readers = {t: [v for v in views if t in _tables_read(compiled, v)] for t in order}
    recreate: set[str] = set()
    for name, rec in state.items():
        if rec.kind == Kind.VIEW and name not in views:
            result.changes.append(
                Change(
                    Action.DROP,
                    Kind.VIEW,
                    name,
                    "pipe removed from project",
                    [f"DROP TABLE IF EXISTS `{name}`"],
                )
            )
    for name in order:
        ds = project.datasources[name]
        _check_features(backend, ds)
        change = _table_change(ds, state.get(name), live.get(name), result.drift)
        for step, feature in (
            ("MODIFY TTL", "ALTER TABLE ... MODIFY TTL"),
            ("MODIFY SETTING", "ALTER TABLE ... MODIFY SETTING"),
        ):
            if any(step in s for s in change.steps):
                require(backend, feature, f"datasource {name} ({ds.file})")
        if change.action == Action.REBUILD:
            live_readers = [v for v in readers[name] if v in state and v in live]
            change.steps[:0] = [f"DROP TABLE IF EXISTS `{v}`" for v in live_readers]
            recreate.update(live_readers)
        result.changes.append(change)
    for name in sorted(views, key=lambda v: order.index(desired[v].target)):
        result.changes.append(
            _view_change(
                views[name],
                desired[name],
                state.get(name),
                live.get(name),
                project,
                name in recreate,
                result.drift,
            )
        )
    for name, rec in state.items():
        if rec.kind == Kind.TABLE and name not in project.datasources:
            result.changes.append(
                Change(
                    Action.DROP,
                    Kind.TABLE,
                    name,
                    "datasource removed from project",
                    [f"DROP TABLE IF EXISTS `{name}`"],
                    destructive=True,
                )
            )
    if cluster:
        from rtp.deploy.cluster import for_cluster

        for_cluster(result, project, compiled, backend)  # type: ignore[arg-type]
    return result


# -- tables ----------------------------------------------------------------------------


def spec_of(ds: Datasource) -> dict[str, Any]:
    """What the deploy state keeps of a datasource to compare the next plan with: its
    columns and each of :data:`rtp.sql.ddl.TABLE_PARTS`."""
    return {"columns": [[c.name, c.type, column_sql(c)] for c in ds.columns], **part_spec(ds)}


def _table_change(
    ds: Datasource, rec: Record | None, live: Live | None, drift: list[str]
) -> Change:
    ddl = create_table(ds)
    record = Record(ds.name, Kind.TABLE, digest(ddl), spec_of(ds))
    if live is None:
        if rec is not None:
            drift.append(f"table {ds.name} was dropped by hand")
        return Change(
            Action.CREATE,
            Kind.TABLE,
            ds.name,
            "new datasource" if rec is None else "missing on the target",
            [ddl],
            record=record,
        )
    if rec is None:
        if _same_columns(live.columns, ds):
            return Change(
                Action.ADOPT,
                Kind.TABLE,
                ds.name,
                "exists with the same columns; recorded in the deploy state",
                record=record,
            )
        return _rebuild(
            ds,
            live,
            record,
            "exists but was not created by rtp and its columns differ",
            destructive=True,
        )
    if live.hash != rec.live_hash:
        drift.append(f"table {ds.name} was changed by hand{live.where}{_column_drift(rec, live)}")
        return _rebuild(
            ds, live, record, "changed by hand; rebuilt from the project", destructive=True
        )
    if rec.hash == record.hash:
        return Change(Action.NO_OP, Kind.TABLE, ds.name, record=rec)
    old, new = rec.spec, record.spec
    rebuilt = [
        k
        for k in dict.fromkeys(p.spec_key for p in TABLE_PARTS if p.change == "rebuild")
        if old.get(k) != new[k]
    ]
    if rebuilt:
        what = "engine" if "engine" in rebuilt else "sorting/primary/partition key"
        lost = "engine" in rebuilt or bool(_dropped_columns(old, new))
        return _rebuild(ds, live, record, f"{what} changed", destructive=lost)
    return _alter(ds, old, new, record)


def _alter(ds: Datasource, old: dict[str, Any], new: dict[str, Any], record: Record) -> Change:
    t = f"`{ds.name}`"
    steps: list[str] = []
    notes: list[str] = []
    destructive = False
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
    # the parts an ALTER changes, in the order of CREATE TABLE's clauses
    for part in sorted((p for p in TABLE_PARTS if p.change == "alter"), key=lambda p: p.position):
        before, after_ = old.get(part.spec_key), new[part.spec_key]
        if before != after_:
            more, note, lossy = _ALTERS[part.field](t, before, after_)
            steps += more
            notes += [note] if note and more else []
            destructive = destructive or lossy
    if not steps:  # only formatting of the DDL changed
        return Change(Action.ADOPT, Kind.TABLE, ds.name, "equivalent definition", record=record)
    return Change(Action.ALTER, Kind.TABLE, ds.name, ", ".join(notes), steps, destructive, record)


def _alter_indexes(
    t: str, old: dict[str, str] | None, new: dict[str, str]
) -> tuple[list[str], str, bool]:
    old = old or {}
    steps = [
        f"ALTER TABLE {t} DROP INDEX `{name}`"
        for name in old
        if name not in new or old[name] != new[name]
    ]
    added = [name for name, text in new.items() if name not in old or old[name] != text]
    steps += [f"ALTER TABLE {t} ADD INDEX `{name}` {new[name]}" for name in added]
    return steps, ", ".join(f"index {name}" for name in added), False


def _alter_ttl(t: str, old: str | None, new: str | None) -> tuple[list[str], str, bool]:
    step = f"ALTER TABLE {t} MODIFY TTL {new}" if new else f"ALTER TABLE {t} REMOVE TTL"
    return [step], "TTL", True  # a new or shorter TTL deletes rows


def _alter_settings(
    t: str, old: dict[str, Any] | None, new: dict[str, Any]
) -> tuple[list[str], str, bool]:
    old = old or {}
    steps = []
    changed = {k: v for k, v in new.items() if old.get(k) != v}
    if changed:
        steps.append(
            f"ALTER TABLE {t} MODIFY SETTING "
            + ", ".join(f"{k} = {setting_sql(v)}" for k, v in changed.items())
        )
    removed = [k for k in old if k not in new]
    if removed:
        steps.append(f"ALTER TABLE {t} RESET SETTING {', '.join(removed)}")
    return steps, "settings", False


# how a plan changes each part of TABLE_PARTS whose change is "alter"
_ALTERS: dict[str, Callable[[str, Any, Any], tuple[list[str], str, bool]]] = {
    "indexes": _alter_indexes,
    "ttl": _alter_ttl,
    "settings": _alter_settings,
}


def _rebuild(
    ds: Datasource, live: Live, record: Record, reason: str, *, destructive: bool
) -> Change:
    """New table, copy the columns both have, swap names, drop the old one."""
    name = ds.name
    common = [f"`{c.name}`" for c in ds.columns if c.name in dict(live.columns)]
    steps = [
        f"DROP TABLE IF EXISTS `{name}{NEW}`",
        f"DROP TABLE IF EXISTS `{name}{OLD}`",
        create_table(ds, name=f"{name}{NEW}"),
    ]
    if common:
        cols = ", ".join(common)
        steps.append(f"INSERT INTO `{name}{NEW}` ({cols}) SELECT {cols} FROM `{name}`")
    steps += [
        f"RENAME TABLE `{name}` TO `{name}{OLD}`, `{name}{NEW}` TO `{name}`",
        f"DROP TABLE IF EXISTS `{name}{OLD}`",
    ]
    return Change(Action.REBUILD, Kind.TABLE, name, reason, steps, destructive, record)


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
    notes += [
        f"column {n} is {now[n]}, deployed as {deployed[n]}"
        for n in now
        if n in deployed and now[n] != deployed[n]
    ]
    return f" ({'; '.join(notes)})" if notes else " (its definition differs)"


def _check_features(backend: Backend, ds: Datasource) -> None:
    where = f"datasource {ds.name} ({ds.file})"
    if any("DateTime64" in c.type for c in ds.columns):
        require(backend, "DateTime64", where)
    if any(re.search(r"\bJSON\b", c.type) for c in ds.columns):
        require(backend, "the JSON type", where)
    if ds.ttl:
        require(backend, "table TTL", where)
    if ds.indexes:
        require(backend, "data skipping indexes", where)


def _table_order(project: Project, compiled: CompiledProject) -> list[str]:
    """Datasources, each after the ones whose materialized views feed it."""
    compiled_reads: dict[str, set[str]] = {}
    for pipe in project.pipes.values():
        if pipe.type == "materialized" and pipe.target and pipe.name not in compiled.broken:
            compiled_reads.setdefault(pipe.target, set()).update(_tables_read(compiled, pipe.name))
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


@dataclass(frozen=True)
class DesiredView:
    """A materialized pipe as the project wants it: its composed SELECT (the view's
    query, also its backfill's) and the CREATE MATERIALIZED VIEW built from it."""

    name: str
    target: str
    select: str

    @property
    def ddl(self) -> str:
        return create_materialized_view(self.name, self.target, self.select)


def _desired_view(compiled: CompiledProject, pipe: Pipe, form: bool = False) -> DesiredView:
    if pipe.name in compiled.broken or not pipe.target:
        raise SqlError(
            f"materialized pipe '{pipe.name}' has errors",
            code="RTP304",
            hint="run `rtp check` and fix them before deploying",
        )
    select = compiled.compose(pipe.name, compiled.sample_values(pipe.name), nested=form).sql
    return DesiredView(pipe.name, pipe.target, select)


def _backfill(table: str, view: DesiredView, target: Datasource) -> str:
    """``INSERT INTO table (the view's output columns) <the view's query>``: a view fills
    its target by column name, an INSERT by position, so the columns are named (a target
    with more columns than the view produces takes their defaults)."""
    import sqlglot

    select = view.select
    try:
        parsed = sqlglot.parse_one(select, read="clickhouse")
        names = parsed.named_selects if isinstance(parsed, sqlglot.exp.Query) else []
    except sqlglot.errors.SqlglotError:
        names = []
    known = {c.name for c in target.columns}
    if names and "*" not in names and set(names) <= known and len(set(names)) == len(names):
        return f"INSERT INTO `{table}` ({', '.join(f'`{n}`' for n in names)})\n{select}"
    return f"INSERT INTO `{table}`\n{select}"


def _tables_read(compiled: CompiledProject, pipe_name: str) -> set[str]:
    names: set[str] = set()
    for name in [*compiled.pipes_read(pipe_name), pipe_name]:
        names.update(r for r in compiled.pipes[name].reads if r in compiled.project.datasources)
    return names


def _view_change(
    pipe: Pipe,
    view: DesiredView,
    rec: Record | None,
    live: Live | None,
    project: Project,
    dropped: bool,
    drift: list[str],
) -> Change:
    name, target, ddl = view.name, view.target, view.ddl
    record = Record(name, Kind.VIEW, digest(ddl), {"target": target, "populate": pipe.populate})
    if rec is None and live is not None and live.engine == "MaterializedView":
        # e.g. a deploy stopped before recording it: whether its backfill ran is unknown,
        # so with populate the target is rebuilt from the source
        if pipe.populate:
            return _rebuild_target(
                pipe,
                view,
                project,
                record,
                f"exists but is not in the deploy state; {target} rebuilt from the source",
            )
        return Change(
            Action.RECREATE,
            Kind.VIEW,
            name,
            "exists but is not in the deploy state",
            [f"DROP TABLE IF EXISTS `{name}`", ddl],
            record=record,
        )
    if rec is None or live is None:
        if rec is not None:
            drift.append(f"view {name} was dropped by hand")
            if pipe.populate:
                # its target holds the view's rows up to the drop and misses those since:
                # backfilling on top would count the old ones twice
                return _rebuild_target(
                    pipe,
                    view,
                    project,
                    record,
                    f"missing on the target; {target} rebuilt from the source",
                )
        if not pipe.populate:
            return Change(
                Action.CREATE,
                Kind.VIEW,
                name,
                f"materialized pipe -> {target}",
                [ddl],
                record=record,
            )
        return _backfill_target(pipe, view, project, record)
    if live.hash != rec.live_hash:
        drift.append(f"view {name} was changed by hand{live.where}")
    if rec.hash == record.hash and live.hash == rec.live_hash:
        if dropped:
            return Change(
                Action.RECREATE,
                Kind.VIEW,
                name,
                "a table it reads is rebuilt",
                [ddl],
                record=record,
            )
        return Change(Action.NO_OP, Kind.VIEW, name, record=rec)
    what = "query changed" if rec.hash != record.hash else "changed by hand"
    if not pipe.populate:
        return Change(
            Action.RECREATE,
            Kind.VIEW,
            name,
            f"{what}; rows from now on use the project's query",
            [f"DROP TABLE IF EXISTS `{name}`", ddl],
            record=record,
        )
    return _rebuild_target(pipe, view, project, record, f"{what}; {target} rebuilt from the source")


def _rebuild_target(
    pipe: Pipe, view: DesiredView, project: Project, record: Record, reason: str
) -> Change:
    """Fill a new target from the source with the view's query, swap it in, and attach
    the view to it (all under the backend's exclusive hold, see apply)."""
    name, target, ddl = view.name, view.target, view.ddl
    new = f"{target}{NEW}"
    steps = [
        f"DROP TABLE IF EXISTS `{new}`",
        f"DROP TABLE IF EXISTS `{target}{OLD}`",
        create_table(project.datasources[target], name=new),
        _backfill(new, view, project.datasources[target]),
        f"DROP TABLE IF EXISTS `{name}`",
        f"RENAME TABLE `{target}` TO `{target}{OLD}`, `{new}` TO `{target}`",
        ddl,
        f"DROP TABLE IF EXISTS `{target}{OLD}`",
    ]
    return Change(Action.REBUILD, Kind.VIEW, name, reason, steps, record=record)


def _backfill_target(pipe: Pipe, view: DesiredView, project: Project, record: Record) -> Change:
    """A new view with populate: a fresh copy of its target gets the target's rows and
    the backfill, is swapped in, and the view attached. A backfill killed half-way
    leaves rows only in the fresh table, which a resumed deploy drops and fills again
    (see rtp.deploy.journal): the target never holds a row twice."""
    name, target, ddl = view.name, view.target, view.ddl
    new = f"{target}{NEW}"
    cols = ", ".join(f"`{c.name}`" for c in project.datasources[target].columns)
    steps = [
        f"DROP TABLE IF EXISTS `{new}`",
        f"DROP TABLE IF EXISTS `{target}{OLD}`",
        create_table(project.datasources[target], name=new),
        f"INSERT INTO `{new}` ({cols}) SELECT {cols} FROM `{target}`",
        _backfill(new, view, project.datasources[target]),
        f"RENAME TABLE `{target}` TO `{target}{OLD}`, `{new}` TO `{target}`",
        ddl,
        f"DROP TABLE IF EXISTS `{target}{OLD}`",
    ]
    return Change(
        Action.CREATE,
        Kind.VIEW,
        name,
        f"materialized pipe -> {target}, backfilled",
        steps,
        record=record,
    )
