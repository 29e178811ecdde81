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
from typing import TYPE_CHECKING

from rtp.engine import has, nested
from rtp.errors import EngineError
from rtp.sql.compose import rename_tables
from rtp.sql.ddl import (
    create_distributed,
    create_materialized_view,
    create_table,
    local,
    qualified,
)

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
