"""Plans of the version lifecycle: stage, switch (promote and rollback), retire.

Each is a :class:`rtp.deploy.plan.Plan` of changes with exact statements, applied by
:func:`rtp.deploy.apply.apply`: journaled step by step, under the backend's exclusive
hold, finished by the next deploy command after a crash (see docs/deploy.md,
"Versions"). The *changed set* of a version is every object that differs from the live
one, closed downstream: a changed datasource changes the views reading it, a changed
view its target, a changed target every view writing to it. Only the changed set gets
new objects; the rest is shared.

A staged source datasource is filled from the live table (its columns by name, or the
datasource's ``forward_query``) and kept fed by a *forwarder*, a materialized view from
the live table, so a row ingested while a version is staged reaches both, once each.
A staged view target is filled by its (staged) views' queries. Promote drops the views
of the changed set, swaps names with one ``RENAME TABLE`` (live ``x`` to
``x__rtp_v<n>``, ``x__rtp_stage`` to ``x``), creates the new version's views and keeps
the demoted version fed the same way, so ``rollback`` is the same switch backwards.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from rtp.deploy.plan import (
    Action,
    Change,
    DesiredView,
    Kind,
    Plan,
    _backfill,
    _desired_view,
    _table_order,
    _tables_read,
    plan,
    spec_of,
)
from rtp.deploy.state import Record, digest, read_live, read_state
from rtp.deploy.versions import (
    LIVE,
    PREVIOUS,
    STAGE,
    STAGING,
    Version,
    forwarder,
    status_step,
    suffix,
)
from rtp.sql.ddl import create_materialized_view, create_table
from rtp.sql.rename import rename_tables

if TYPE_CHECKING:
    from rtp.engine import Backend
    from rtp.project.model import Datasource, Project
    from rtp.sql.compose import CompiledProject


def manifest_of(project: Project, compiled: CompiledProject) -> dict[str, Any]:
    """What a staged version keeps of the project: each datasource's record and DDL,
    each materialized view's record, target and query (plain names)."""
    tables = {
        name: {"hash": digest(create_table(ds)), "spec": spec_of(ds), "ddl": create_table(ds)}
        for name, ds in project.datasources.items()
    }
    views = {}
    for pipe in project.pipes.values():
        if pipe.type == "materialized":
            view = _desired_view(compiled, pipe)
            views[pipe.name] = {
                "hash": digest(view.ddl),
                "spec": {"target": view.target, "populate": pipe.populate},
                "target": view.target,
                "select": view.select,
                "reads": sorted(_tables_read(compiled, pipe.name)),
            }
    return {"tables": tables, "views": views}


def changed_set(project: Project, compiled: CompiledProject, backend: Backend) -> list[str]:
    """Names (tables and views) whose staged version differs from the live one, closed
    downstream; empty when the project is what is live. Reads only."""
    pending = plan(project, backend, compiled=compiled).pending
    changed = {c.name for c in pending}
    state = read_state(backend)
    views = {p.name: p for p in project.pipes.values() if p.type == "materialized"}
    targets: dict[str, set[str]] = {}  # view -> its targets, staged and live
    reads: dict[str, set[str]] = {}
    for name in set(views) | {n for n, r in state.items() if r.kind == Kind.VIEW}:
        targets[name] = set()
        target = views[name].target if name in views else None
        if target:
            targets[name].add(target)
        if name in state and state[name].spec.get("target"):
            targets[name].add(state[name].spec["target"])
        reads[name] = _tables_read(compiled, name) if name in views else set()
    grew = True
    while grew:
        before = len(changed)
        for view in targets:
            if view in changed or reads[view] & changed or targets[view] & changed:
                changed.add(view)
                changed |= targets[view]
        grew = len(changed) > before
    return sorted(changed)


def stage_manifest(
    project: Project,
    compiled: CompiledProject,
    backend: Backend,
    changed: list[str],
    base: int,
) -> dict[str, Any]:
    """What version-to-be keeps (see :func:`manifest_of`) with its changed set, the live
    version it is staged on, and which changed datasources the live ones feed."""
    manifest = manifest_of(project, compiled)
    live = read_live(backend)
    view_targets = {v["target"] for v in manifest["views"].values()}
    manifest.update(
        changed=changed,
        base=base,
        forwarded=sorted(
            n for n in changed if n in manifest["tables"] and n in live and n not in view_targets
        ),
    )
    return manifest


def stage_plan(
    project: Project,
    compiled: CompiledProject,
    backend: Backend,
    number: int,
    manifest: dict[str, Any],
) -> Plan:
    """The plan that builds version ``number`` (its ``manifest``) next to live."""
    live = read_live(backend)
    views, changed, forwarded = manifest["views"], manifest["changed"], manifest["forwarded"]
    staged = {n: n + STAGE for n in changed if n in manifest["tables"]}
    feeds = {
        t: feed_select(
            _columns_of(project.datasources[t]),
            [c for c, _ in live[t].columns],
            t,
            project.datasources[t].forward_query,
        )
        for t in forwarded
    }
    result = Plan(target=f"{backend.name}:{backend.database} (stage version {number})")
    for name in _table_order(project, compiled):
        if name not in staged:
            continue
        ds, new = project.datasources[name], staged[name]
        feeders = sorted(v for v in views if views[v]["target"] == name and v in changed)
        steps = [f"DROP TABLE IF EXISTS `{v}{STAGE}`" for v in feeders]
        if name in forwarded:
            steps.append(f"DROP TABLE IF EXISTS `{forwarder(name, STAGE)}`")
        steps += [f"DROP TABLE IF EXISTS `{new}`", create_table(ds, name=new)]
        if name in forwarded:
            select = feeds[name]
            cols = ", ".join(f"`{c}`" for c in _named(select, ds))
            steps += [
                f"INSERT INTO `{new}` ({cols})\n{select}",
                create_materialized_view(forwarder(name, STAGE), new, select),
            ]
        for v in feeders:
            backfill = DesiredView(v, new, rename_tables(views[v]["select"], staged))
            steps.append(_backfill(new, backfill, ds))
            select = rename_tables(views[v]["select"], view_sources(staged, feeds))
            steps.append(create_materialized_view(v + STAGE, new, select))
        reason = "forwarded from live" if name in forwarded else "new datasource"
        if feeders:
            reason = f"filled by {', '.join(feeders)}"
        result.changes.append(Change(Action.CREATE, Kind.TABLE, new, reason, steps))
    result.changes.append(
        Change(
            Action.CREATE,
            Kind.TABLE,
            f"version {number}",
            "staged",
            [status_step(number, STAGING, manifest["base"])],
        )
    )
    return result


Columns = list[tuple[str, str, str | None]]  # (name, type, default expression)


def feed_select(
    columns: Columns, live_columns: list[str], source: str, query: str | None = None
) -> str:
    """How rows of live table ``source`` become rows of a kept version's copy with
    ``columns``: ``query`` (the datasource's ``forward_query``, a SELECT list over the
    live table: Tinybird's FORWARD_QUERY), else every column both have, by name, and each
    other column's default (a materialized view must produce every column of its
    target on 18.16)."""
    if query:
        text = query.strip().rstrip(";")
        if not re.search(r"\bFROM\b", text, re.I):
            text += f"\nFROM `{source}`"
        return text
    fills = [_fill(name, ctype, default, live_columns) for name, ctype, default in columns]
    return f"SELECT {', '.join(fills)}\nFROM `{source}`"


def _fill(name: str, ctype: str, default: str | None, live_columns: list[str]) -> str:
    if name in live_columns:
        return f"`{name}`"
    base = re.sub(r"^LowCardinality\((.*)\)$", r"\1", ctype)
    if default:
        value = f"({default})"
    elif base.startswith("Nullable"):
        value = "NULL"
    elif base.startswith("UUID"):
        value = "'00000000-0000-0000-0000-000000000000'"
    elif base.startswith(("String", "FixedString", "Enum")):
        value = "''"
    elif base.startswith("Array"):
        value = "[]"
    elif base.startswith("Map"):
        value = "map()"
    else:
        value = "0"
    return f"CAST({value} AS {ctype}) AS `{name}`"


def _columns_of(ds: Datasource) -> Columns:
    return [(c.name, c.type, c.default) for c in ds.columns]


def _columns_of_spec(table: dict) -> Columns:
    return [(c[0], c[1], None) for c in table.get("spec", {}).get("columns", [])]


def view_sources(changed_tables: dict[str, str], feeds: dict[str, str]) -> dict[str, str]:
    """What a kept version's materialized view reads in place of each table: a fed
    table as the feed's subquery over the live table (ClickHouse 18.16 does not pass
    rows a view writes on to the views of its target, so a view can't hang off the
    fed copy), any other changed table by its copy's name."""
    out = dict(changed_tables)
    out.update({t: f"(\n{select}\n)" for t, select in feeds.items()})
    return out


def _named(select: str, ds: Datasource) -> list[str]:
    import sqlglot

    try:
        parsed = sqlglot.parse_one(select, read="clickhouse")
        names = list(parsed.named_selects) if isinstance(parsed, sqlglot.exp.Query) else []
    except sqlglot.errors.SqlglotError:
        names = []
    known = {c.name for c in ds.columns}
    if names and "*" not in names and set(names) <= known:
        return names
    return [c.name for c in ds.columns]


def live_manifest(backend: Backend, changed: list[str], other: Version) -> dict[str, Any]:
    """The live version's manifest for its changed set against ``other`` (taken from the
    deploy state and the engine: a view's query as ClickHouse keeps it, its database
    names taken out)."""
    state, live = read_state(backend), read_live(backend)
    tables, views = {}, {}
    for name in changed:
        rec = state.get(name)
        if rec is None:
            continue
        if rec.kind == Kind.TABLE:
            tables[name] = {"hash": rec.hash, "spec": rec.spec}
        elif name in live:
            views[name] = {
                "hash": rec.hash,
                "spec": rec.spec,
                "target": rec.spec.get("target", ""),
                "select": view_select(
                    live[name].create_query, backend.database, getattr(backend, "cluster", None)
                ),
            }
    view_targets = {v["target"] for v in views.values()}
    other_tables = other.manifest.get("tables", {})
    forwarded = sorted(
        n for n in tables if n in other_tables and n not in view_targets and n in changed
    )
    return {"tables": tables, "views": views, "changed": changed, "forwarded": forwarded}


def view_select(create_query: str, database: str, cluster: str | None = None) -> str:
    """The SELECT of ``CREATE MATERIALIZED VIEW db.v TO db.t (...) AS SELECT ...`` with
    ``db.`` taken off the names (ClickHouse qualifies them when it stores the view); on
    a cluster, node-local tables named as their datasources (``events__local`` ->
    ``events``)."""
    match = re.search(r"\sAS\s+(?=SELECT\b|WITH\b|\()", create_query)
    select = create_query[match.end() :] if match else create_query
    db = re.escape(database)
    select = re.sub(rf"(?<![\w.`])(?:`{db}`|{db})\.(?=[`\w])", "", select)
    return re.sub(r"(?<=\w)__local\b", "", select) if cluster else select


def switch_plan(
    backend: Backend, current: Version, to: Version, *, keep: int, retire: list[Version]
) -> Plan:
    """Make ``to`` live and ``current`` (live) previous: drop the changed set's views,
    swap names in one RENAME, create ``to``'s views and keep ``current`` fed. ``retire``:
    kept versions dropped first (past ``keep``)."""
    result = Plan(target=f"{backend.name}:{backend.database} (version {to.number} live)")
    for old in retire:
        result.changes.append(retire_change(old, "retired"))
    changed = to.changed
    came, went = suffix(to), f"__rtp_v{current.number}"
    cur_tables, cur_views = current.manifest.get("tables", {}), current.manifest.get("views", {})
    new_tables, new_views = to.manifest.get("tables", {}), to.manifest.get("views", {})
    steps = [f"DROP TABLE IF EXISTS `{v}`" for v in changed if v in cur_views]
    steps += [f"DROP TABLE IF EXISTS `{v}{came}`" for v in changed if v in new_views]
    steps += [f"DROP TABLE IF EXISTS `{forwarder(t, came)}`" for t in to.manifest["forwarded"]]
    pairs = [f"`{t}` TO `{t}{went}`" for t in changed if t in cur_tables]
    pairs += [f"`{t}{came}` TO `{t}`" for t in changed if t in new_tables]
    if pairs:
        steps.append("RENAME TABLE " + ", ".join(pairs))
    for v in changed:
        if v in new_views:
            spec = new_views[v]
            steps.append(create_materialized_view(v, spec["target"], spec["select"]))
    if keep > 1:
        moved = {t: t + went for t in changed if t in cur_tables}
        feeds = {
            t: feed_select(
                _columns_of_spec(cur_tables[t]), [c[0] for c in _columns_of_spec(new_tables[t])], t
            )
            for t in current.manifest.get("forwarded", [])
        }
        for t, select in feeds.items():
            steps.append(create_materialized_view(forwarder(t, went), t + went, select))
        for v in changed:
            if v in cur_views:
                spec = cur_views[v]
                target = moved.get(spec["target"], spec["target"])
                select = rename_tables(spec["select"], view_sources(moved, feeds))
                steps.append(create_materialized_view(v + went, target, select))
    steps += [status_step(to.number, LIVE, to.base)]
    steps += [status_step(current.number, PREVIOUS if keep > 1 else "retired", current.base)]
    first = Change(
        Action.REBUILD, Kind.TABLE, f"version {to.number}", "swap names", steps, record=None
    )
    result.changes.append(first)
    for name in changed:  # the deploy state follows what is live
        spec = new_tables.get(name) or new_views.get(name)
        kind = Kind.TABLE if name in new_tables or name in cur_tables else Kind.VIEW
        record = None if spec is None else Record(name, kind, spec["hash"], spec["spec"])
        result.changes.append(
            Change(Action.ALTER, kind, name, "recorded as live", [], record=record)
        )
    if keep <= 1:
        demoted = Version(current.number, PREVIOUS, current.base, "", current.manifest)
        result.changes.append(retire_change(demoted, "retired"))
    return result


def retire_change(version: Version, status: str) -> Change:
    """Drop a kept version's own objects (its views and forwarders first)."""
    end = suffix(version)
    views = version.manifest.get("views", {})
    tables = version.manifest.get("tables", {})
    changed = version.changed
    steps = [f"DROP TABLE IF EXISTS `{v}{end}`" for v in changed if v in views]
    steps += [
        f"DROP TABLE IF EXISTS `{forwarder(t, end)}`" for t in version.manifest.get("forwarded", [])
    ]
    steps += [f"DROP TABLE IF EXISTS `{t}{end}`" for t in changed if t in tables]
    steps.append(status_step(version.number, status, version.base))
    return Change(Action.DROP, Kind.TABLE, f"version {version.number}", status, steps)
