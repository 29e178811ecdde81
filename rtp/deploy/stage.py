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
    from rtp.project.model import Project
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
        if name in views and views[name].target:
            targets[name].add(views[name].target)
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
            select = forward_select(ds, [c for c, _ in live[name].columns], name)
            cols = ", ".join(f"`{c}`" for c in _named(select, ds))
            steps += [
                f"INSERT INTO `{new}` ({cols})\n{select}",
                create_materialized_view(forwarder(name, STAGE), new, select),
            ]
        for v in feeders:
            view = DesiredView(v + STAGE, new, rename_tables(views[v]["select"], staged))
            steps += [_backfill(new, view, ds), view.ddl]
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


def forward_select(ds, live_columns: list[str], source: str) -> str:
    """How rows of the live table become rows of ``ds``'s new table: its
    ``forward_query`` (a SELECT list over the live table, Tinybird's FORWARD_QUERY), else
    every column both have, by name (the others take their defaults)."""
    query = getattr(ds, "forward_query", None)
    if query:
        text = query.strip().rstrip(";")
        if not re.search(r"\bFROM\b", text, re.I):
            text += f"\nFROM `{source}`"
        return text
    cols = [f"`{c.name}`" for c in ds.columns if c.name in live_columns]
    return f"SELECT {', '.join(cols)}\nFROM `{source}`"


def _named(select: str, ds) -> list[str]:
    import sqlglot

    try:
        parsed = sqlglot.parse_one(select, read="clickhouse")
        names = list(parsed.named_selects)
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
                "select": view_select(live[name].create_query, backend.database),
            }
    view_targets = {v["target"] for v in views.values()}
    other_tables = other.manifest.get("tables", {})
    forwarded = sorted(
        n for n in tables if n in other_tables and n not in view_targets and n in changed
    )
    return {"tables": tables, "views": views, "changed": changed, "forwarded": forwarded}


def view_select(create_query: str, database: str) -> str:
    """The SELECT of ``CREATE MATERIALIZED VIEW db.v TO db.t (...) AS SELECT ...`` with
    ``db.`` taken off the names (ClickHouse qualifies them when it stores the view)."""
    match = re.search(r"\sAS\s+(?=SELECT\b|WITH\b|\()", create_query)
    select = create_query[match.end() :] if match else create_query
    db = re.escape(database)
    return re.sub(rf"(?<![\w.`])(?:`{db}`|{db})\.(?=[`\w])", "", select)


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
        for v in changed:
            if v in cur_views:
                spec = cur_views[v]
                target = moved.get(spec["target"], spec["target"])
                select = rename_tables(spec["select"], moved)
                steps.append(create_materialized_view(v + went, target, select))
        for t in current.manifest.get("forwarded", []):
            cols = [c[0] for c in cur_tables[t]["spec"].get("columns", [])]
            common = [c for c in cols if c in _columns(new_tables[t])]
            select = f"SELECT {', '.join(f'`{c}`' for c in common)}\nFROM `{t}`"
            steps.append(create_materialized_view(forwarder(t, went), t + went, select))
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


def _columns(table: dict) -> set[str]:
    return {c[0] for c in table.get("spec", {}).get("columns", [])}
