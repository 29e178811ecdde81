"""A plan for a cluster: the single-server plan's statements, as the cluster runs them.

The plan is made as for one server (rtp.deploy.plan), against the live objects of every
node (rtp.deploy.state), then each statement becomes its cluster form, all ON CLUSTER:

* a datasource's ``CREATE TABLE`` -> its Replicated node-local table and the Distributed
  table over it (rtp.sql.ddl);
* ``ALTER TABLE`` -> the node-local table's ALTER; a column change then recreates the
  Distributed table (it holds no rows: rtp inserts synchronously, and 18.16 refuses
  ``ALTER ... ON CLUSTER`` of a Distributed table on a replicated cluster);
* ``RENAME`` -> the node-local tables' (the Distributed tables keep reading by name);
* ``DROP`` -> both tables of a datasource, or the view;
* a materialized view -> ON CLUSTER, reading node-local tables into its target's
  node-local table, so each node's view sees the rows its node stores;
* ``INSERT ... SELECT`` (rebuilds, backfills) runs as it is, through Distributed tables.

The journal (rtp.deploy.journal) reads these forms too, so a cluster deploy resumes as
a single server's does.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING

from rtp.engine import has, nested
from rtp.errors import EngineError
from rtp.sql.analysis import analyze
from rtp.sql.compose import rename_tables
from rtp.sql.ddl import (
    LOCAL,
    ClusterSpec,
    create_distributed,
    create_materialized_view,
    create_table,
    local,
    qualified,
)
from rtp.sql.escape import quote_string

if TYPE_CHECKING:
    from rtp.deploy.plan import Change, Plan
    from rtp.engine.cluster import ClusterBackend
    from rtp.project.model import Datasource, Project
    from rtp.sql.compose import CompiledProject

_CREATE = re.compile(r"CREATE TABLE `([^`]+)`")
_VIEW = re.compile(r"CREATE MATERIALIZED VIEW `([^`]+)`")
_DROP = re.compile(r"DROP TABLE IF EXISTS `([^`]+)`$")
_ALTER = re.compile(r"ALTER TABLE `([^`]+)` (.*)$", re.S)
_PAIR = re.compile(r"`([^`]+)` TO `([^`]+)`")
_COLUMN = re.compile(r"(ADD|DROP|MODIFY) COLUMN\b")


def for_cluster(
    plan: Plan, project: Project, compiled: CompiledProject, backend: ClusterBackend
) -> None:
    """Rewrite every pending change's statements into their cluster form (module doc)."""
    from rtp.deploy.plan import NEW, OLD

    _check_low_cardinality(project, backend)
    spec = backend.spec()
    on = spec.on
    sources = {name: qualified(local(name), spec.database) for name in project.datasources}

    def datasource(name: str) -> Datasource | None:
        base = name.removesuffix(NEW).removesuffix(OLD)
        return project.datasources.get(base)

    def is_table(name: str, change: Change) -> bool:
        return datasource(name) is not None or (change.kind == "table" and name == change.name)

    for change in plan.pending:
        steps: list[str] = []
        distributed_stale: set[str] = set()
        for sql in change.steps:
            if m := _CREATE.match(sql):
                name = m.group(1)
                ds = datasource(name)
                assert ds is not None  # the plan creates tables of datasources only
                steps += [
                    create_table(ds, name=name, cluster=spec, nonce=uuid.uuid4().hex[:12]),
                    create_distributed(name, spec, ds.shard_key),
                ]
            elif m := _VIEW.match(sql):
                pipe = project.pipes[m.group(1)]
                select = compiled.compose(
                    pipe.name, compiled.sample_values(pipe.name), nested=nested(backend)
                ).sql
                steps.append(
                    create_materialized_view(
                        pipe.name, pipe.target or "", rename_tables(select, sources), cluster=spec
                    )
                )
            elif m := _DROP.match(sql):
                name = m.group(1)
                steps.append(f"DROP TABLE IF EXISTS `{name}`{on}")
                if is_table(name, change):
                    steps.append(f"DROP TABLE IF EXISTS `{local(name)}`{on}")
            elif sql.startswith("RENAME TABLE "):
                pairs = _PAIR.findall(sql)
                renames = ", ".join(f"`{local(a)}` TO `{local(b)}`" for a, b in pairs)
                steps.append(f"RENAME TABLE {renames}{on}")
                # a swapped-in table's Distributed table now reads a name that is gone (no
                # IF EXISTS: the journal restarts a rebuild from its first DROP ...__rtp_new)
                steps += [f"DROP TABLE `{a}`{on}" for a, _ in pairs if a.endswith(NEW)]
            elif m := _ALTER.match(sql):
                name, rest = m.groups()
                steps.append(f"ALTER TABLE `{local(name)}`{on} {rest}")
                if _COLUMN.match(rest):
                    distributed_stale.add(name)
            else:
                steps.append(sql)
        for name in sorted(distributed_stale):
            ds = datasource(name)
            steps += [
                f"DROP TABLE IF EXISTS `{name}`{on}",
                create_distributed(name, spec, ds.shard_key if ds else None),
            ]
        change.steps = steps


def _check_low_cardinality(project: Project, backend: ClusterBackend) -> None:
    """Servers before 19.0 run ON CLUSTER statements with their default profile's
    settings, not the query's: LowCardinality columns need the setting there."""
    if has(backend, "LowCardinality"):
        return
    uses = [
        ds.name
        for ds in project.datasources.values()
        if any("LowCardinality" in c.type for c in ds.columns)
    ]
    if not uses:
        return
    _, rows = backend.query(
        "SELECT value FROM system.settings WHERE name = 'allow_experimental_low_cardinality_type'"
    )
    if not rows or rows[0][0] in ("0", 0):
        raise EngineError(
            f"datasource {uses[0]} uses LowCardinality, which needs ClickHouse 19.0 or newer "
            f"on a cluster; the target runs {backend.version()}",
            code="RTP502",
            hint="upgrade the servers, or set allow_experimental_low_cardinality_type = 1 "
            "in the default profile of every node (users.xml)",
        )


_VERSIONED = re.compile(r"(__rtp_stage|__rtp_v\d+)$")
_VIEW_TO = re.compile(r"CREATE MATERIALIZED VIEW `([^`]+)` TO `([^`]+)`\nAS\n(.*)$", re.S)
_SHARD_KEY = re.compile(r"Distributed\('[^']*',\s*'[^']*',\s*'[^']*'(?:,\s*(.*))?\)\s*$", re.S)


def versions_for_cluster(
    changes: list[Change], backend: ClusterBackend, project: Project | None = None
) -> None:
    """Rewrite the version lifecycle's statements (rtp.deploy.stage) into their cluster
    form, all ON CLUSTER: a version's table ``x__rtp_stage`` / ``x__rtp_v<n>`` is its
    own Replicated node-local table (a fresh ZooKeeper path) and a Distributed table
    over it; views and forwarders read and write node-local tables; the switch is one
    ``RENAME`` of the node-local tables, the Distributed tables then made again."""
    from rtp.deploy.state import read_live

    spec = backend.spec()
    on = spec.on
    live = read_live(backend)
    tables = {n for n, x in live.items() if x.engine != "MaterializedView"}
    tables |= set(project.datasources) if project else set()

    def base(name: str) -> str:
        return _VERSIONED.sub("", name.removesuffix(LOCAL))

    def is_table(name: str) -> bool:
        return base(name) in tables and not name.startswith("_rtp")

    def on_locals(select: str) -> str:
        names = {
            r.name: qualified(r.name if r.name.endswith(LOCAL) else local(r.name), spec.database)
            for r in analyze(select).refs
            if is_table(r.name)
        }
        return rename_tables(select, names)

    def shard_key(name: str) -> str | None:
        if project and base(name) in project.datasources and not _VERSIONED.search(name):
            return project.datasources[base(name)].shard_key
        _, rows = backend.query(
            "SELECT create_table_query FROM system.tables WHERE database = currentDatabase() "
            f"AND name = {quote_string(name)}"
        )
        m = _SHARD_KEY.search(rows[0][0]) if rows else None
        return m.group(1).strip() if m and m.group(1) else None

    for change in changes:
        steps: list[str] = []
        for sql in change.steps:
            if m := _CREATE.match(sql):
                name = m.group(1)
                assert project is not None  # only staging creates tables
                ds = project.datasources[base(name)]
                steps += [
                    create_table(ds, name=name, cluster=spec, nonce=uuid.uuid4().hex[:12]),
                    create_distributed(name, spec, ds.shard_key),
                ]
            elif m := _VIEW_TO.match(sql):
                view, target, select = m.groups()
                select = on_locals(_without_feed_subquery(select, view))
                steps.append(create_materialized_view(view, target, select, cluster=spec))
            elif m := _DROP.match(sql):
                name = m.group(1)
                steps.append(f"DROP TABLE IF EXISTS `{name}`{on}")
                if is_table(name):
                    steps.append(f"DROP TABLE IF EXISTS `{local(name)}`{on}")
            elif sql.startswith("RENAME TABLE "):
                steps += _switch(_PAIR.findall(sql), spec, shard_key)
            else:
                steps.append(sql)
        change.steps = steps


_FEED = re.compile(
    r"\(\nSELECT (.*?)\nFROM `([^`]+)`\n\)(?:\s+AS\s+(?:`([^`]+)`|([A-Za-z_]\w*)))?", re.S
)
_FILL = re.compile(r"(CAST\(.*?\) AS `[^`]+`|`[^`]+`)(?:, |$)", re.S)


def _without_feed_subquery(select: str, view: str) -> str:
    """A kept version's view reads the live table through the feed's query, a subquery
    (rtp.deploy.stage.view_sources); ClickHouse 18.16 refuses such a view's rows on a
    cluster ("There is no query", Code 393) when the insert comes through a Distributed
    table. So the subquery becomes the live table itself, and the columns the feed fills
    with defaults become ``WITH`` aliases. A ``forward_query`` feed can't be written so:
    EngineError RTP518."""
    withs: list[str] = []

    def table(m: re.Match) -> str:
        fills, source = m.group(1), m.group(2)
        alias = m.group(3) or m.group(4) or source
        items = _FILL.findall(fills)
        if ", ".join(items) != fills:
            raise EngineError(
                f"can't stage view {view} on a cluster: it reads {source} through the "
                "datasource's forward_query",
                code="RTP518",
                hint="stage without forward_query (new columns take their defaults), or "
                "deploy straight to live (`rtp deploy`); then `rtp deploy discard`",
            )
        withs.extend(i for i in items if i.startswith("CAST("))
        return f"`{source}` AS `{alias}`"

    out = _FEED.sub(table, select)
    if not withs:
        return out
    head = re.match(r"\s*WITH\b", out, re.I)
    if head:
        return f"WITH {', '.join(withs)}, {out[head.end() :].lstrip()}"
    return f"WITH {', '.join(withs)}\n{out}"


def _switch(
    pairs: list[tuple[str, str]], spec: ClusterSpec, shard_key: Callable[[str], str | None]
) -> list[str]:
    """``RENAME a TO b, ...`` on a cluster: one RENAME of the node-local tables, then each
    name's Distributed table made again over its new node-local table (with its
    columns). A Distributed table reads its table by name, and 18.16 does not move a
    renamed Distributed table's folder (a later DROP DATABASE would then fail), so the
    Distributed tables are dropped and made rather than renamed."""
    on = spec.on
    keys = {b: shard_key(a) for a, b in pairs}  # read before anything is dropped
    renames = ", ".join(f"`{local(a)}` TO `{local(b)}`" for a, b in pairs)
    steps = [f"RENAME TABLE {renames}{on}"]
    steps += [f"DROP TABLE IF EXISTS `{a}`{on}" for a, _ in pairs]
    steps += [create_distributed(b, spec, keys[b]) for _, b in pairs]
    return steps
