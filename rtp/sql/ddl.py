"""DDL text for the project model: tables for datasources, views for materialized pipes.

The user's expressions (types, keys, TTL, defaults) are placed into the statement as
they wrote them; only names rtp chooses are quoted here.

On a cluster (a :class:`ClusterSpec`) a datasource is two tables on every node, made
``ON CLUSTER``: ``<name>__local``, of the Replicated* engine of its family, holding the
node's rows, and ``<name>``, a Distributed table over them for reads and inserts.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from rtp.project.model import Column, Datasource, Engine, Index


def qualified(name: str, database: str | None) -> str:
    return f"`{database}`.`{name}`" if database else f"`{name}`"


def column_sql(column: Column) -> str:
    parts = [f"`{column.name}`", column.type]
    if column.default:
        parts.append(f"DEFAULT {column.default}")
    if column.codec:
        parts.append(f"CODEC({column.codec})")
    if column.comment:
        parts.append("COMMENT '" + column.comment.replace("\\", "\\\\").replace("'", "\\'") + "'")
    return " ".join(parts)


def engine_sql(ds: Datasource) -> str:
    engine = ds.engine
    args = {
        "ReplacingMergeTree": [engine.option("ver"), engine.option("is_deleted")],
        "SummingMergeTree": [f"({engine.option('columns')})" if engine.option("columns") else None],
        "CollapsingMergeTree": [engine.option("sign")],
        "VersionedCollapsingMergeTree": [engine.option("sign"), engine.option("version")],
    }.get(engine.type, [])
    # trailing options may be omitted, earlier ones may not (is_deleted needs ver)
    while args and args[-1] is None:
        args.pop()
    return f"{engine.type}({', '.join(a for a in args if a is not None)})"


# Inserts retried with the same idempotency key are dropped if the table still remembers
# the key among its last DEDUP_WINDOW inserts (non-replicated MergeTree keeps no window
# unless told; Replicated tables have replicated_deduplication_window). A table setting:
# it must be there when the table is created. See docs/ingest.md.
DEDUP_WINDOW = 1000
DEDUP_SETTING = "non_replicated_deduplication_window"


@dataclass(frozen=True)
class TablePart:
    """One part of a table's definition beyond its columns, described once for the three
    places that handle it: the ``CREATE TABLE`` clause (:func:`create_table`), how a
    plan compares a deployed table with the project (``spec`` in the deploy state,
    :mod:`rtp.deploy.plan`) and how ``rtp check`` names the part ClickHouse refused
    (:mod:`rtp.check.schemas`)."""

    field: str  # the Datasource attribute (and the file's key)
    clause: Callable[[Datasource], str | None]  # its DDL clause; None: left out
    position: int  # where the clause goes in CREATE TABLE (-1: inside the column list)
    spec_key: str  # its entry in the deploy state's spec (the three keys share one)
    spec: Callable[[Datasource], Any]  # its value there, as JSON
    # what changing it takes: "rebuild" (a new table), or an ALTER made by the plan
    change: str
    code: str  # rtp check's code when ClickHouse refuses it
    hint: str | None = None
    empty: Any = None  # its value in a table with columns only (rtp check's first probe)

    def value(self, ds: Datasource) -> Any:
        return getattr(ds, self.field)


def _partition(ds: Datasource) -> str | None:
    return f"PARTITION BY {ds.partition_key}" if ds.partition_key else None


def _primary(ds: Datasource) -> str | None:
    return f"PRIMARY KEY ({', '.join(ds.primary_key)})" if ds.primary_key else None


def _order(ds: Datasource) -> str:
    return f"ORDER BY ({', '.join(ds.sorting_key)})" if ds.sorting_key else "ORDER BY tuple()"


def _ttl(ds: Datasource) -> str | None:
    return f"TTL {ds.ttl}" if ds.ttl else None


def table_settings(ds: Datasource) -> list[tuple[str, Any]]:
    """The table's settings as created: the file's, plus rtp's deduplication window."""
    settings = list(ds.settings)
    if (
        ds.engine.type.endswith("MergeTree")
        and not ds.engine.type.startswith("Replicated")
        and DEDUP_SETTING not in dict(settings)
    ):
        settings.append((DEDUP_SETTING, DEDUP_WINDOW))
    return settings


def _settings(ds: Datasource) -> str | None:
    settings = table_settings(ds)
    return (
        "SETTINGS " + ", ".join(f"{k} = {_setting(v)}" for k, v in settings) if settings else None
    )


def index_sql(index: Index) -> str:
    """An index's definition after its name: ``expr TYPE type GRANULARITY n``."""
    return f"{index.expr} TYPE {index.type} GRANULARITY {index.granularity}"


def _indexes(ds: Datasource) -> str | None:
    return ",\n    ".join(f"INDEX `{i.name}` {index_sql(i)}" for i in ds.indexes) or None


# In the order rtp check adds them to a bare table: ClickHouse needs the sorting key
# before the primary key (a prefix of it). Indexes are probed one at a time.
TABLE_PARTS: tuple[TablePart, ...] = (
    TablePart(
        "engine",
        lambda ds: f"ENGINE = {engine_sql(ds)}",
        0,
        "engine",
        lambda ds: [ds.engine.type, [list(o) for o in ds.engine.options]],
        "rebuild",
        "RTP202",
        empty=Engine("MergeTree"),
    ),
    TablePart(
        "sorting_key",
        _order,
        3,
        "keys",
        lambda ds: list(ds.sorting_key),
        "rebuild",
        "RTP203",
        "sorting key expressions must use the datasource's columns; "
        "Nullable columns can't be in a key",
        empty=(),
    ),
    TablePart(
        "primary_key",
        _primary,
        2,
        "keys",
        lambda ds: list(ds.primary_key),
        "rebuild",
        "RTP203",
        "the primary key must be a prefix of the sorting key",
        empty=(),
    ),
    TablePart(
        "partition_key",
        _partition,
        1,
        "keys",
        lambda ds: ds.partition_key,
        "rebuild",
        "RTP203",
        "e.g. toYYYYMM(timestamp); keep partitions few (months, not days)",
    ),
    TablePart(
        "ttl",
        _ttl,
        4,
        "ttl",
        lambda ds: ds.ttl,
        "alter",
        "RTP204",
        "e.g. timestamp + INTERVAL 90 DAY on a Date or DateTime column",
    ),
    TablePart(
        "settings",
        _settings,
        5,
        "settings",
        lambda ds: {k: v for k, v in ds.settings},
        "alter",
        "RTP204",
        "see https://clickhouse.com/docs/operations/settings/merge-tree-settings",
        empty=(),
    ),
    TablePart(
        "indexes",
        _indexes,
        -1,
        "indexes",
        lambda ds: {i.name: index_sql(i) for i in ds.indexes},
        "alter",
        "RTP204",
        empty=(),
    ),
)
PARTS = {part.field: part for part in TABLE_PARTS}


def part_spec(ds: Datasource) -> dict[str, Any]:
    """How a plan compares each part: the deploy state's ``spec`` besides the columns.
    The keys share one entry, ``[sorting, primary, partition]``: a change of any
    rebuilds the table."""
    spec: dict[str, Any] = {}
    for part in TABLE_PARTS:
        if part.spec_key == "keys":
            spec.setdefault("keys", []).append(part.spec(ds))
        else:
            spec[part.spec_key] = part.spec(ds)
    return spec


LOCAL = "__local"  # suffix of a datasource's table on each node of a cluster


@dataclass(frozen=True)
class ClusterSpec:
    """A cluster target as DDL sees it: its name, the database, and the ZooKeeper path
    and replica name of Replicated tables (``{database}`` and ``{table}`` are filled
    in here; ``{shard}``, ``{replica}`` and other macros by each server)."""

    name: str
    database: str
    zookeeper_path: str
    replica: str

    @property
    def on(self) -> str:
        return f" ON CLUSTER `{self.name}`"

    def replicated(self, ds: Datasource, table: str, nonce: str) -> str:
        """The Replicated* engine of ``ds``'s engine family for ``table``: its path ends
        in ``nonce``, so a table made again under the same name (a rebuild) never meets
        the ZooKeeper nodes of the one it replaces."""
        path = self.zookeeper_path.replace("{database}", self.database).replace("{table}", table)
        inner = engine_sql(ds)
        args = inner[inner.index("(") + 1 : -1]
        head = f"{_string(path.rstrip('/') + '/' + nonce)}, {_string(self.replica)}"
        return f"Replicated{ds.engine.type}({head}{', ' + args if args else ''})"


def local(name: str) -> str:
    """The name of a datasource's table on each node of a cluster."""
    return f"{name}{LOCAL}"


def create_table(
    ds: Datasource,
    database: str | None = None,
    *,
    name: str | None = None,
    if_not_exists: bool = False,
    cluster: ClusterSpec | None = None,
    nonce: str = "",
) -> str:
    """``CREATE TABLE`` for a datasource (``name`` overrides the table name). With
    ``cluster``: the node-local table ``<name>__local``, Replicated, ON CLUSTER (pair it
    with :func:`create_distributed`)."""
    lines = [column_sql(c) for c in ds.columns]
    inner = [p.clause(ds) for p in TABLE_PARTS if p.position < 0]
    body = ",\n    ".join([*lines, *(c for c in inner if c)])
    exists = "IF NOT EXISTS " if if_not_exists else ""
    table = name or ds.name
    head = qualified(table, database)
    if cluster is not None:
        table = local(table)
        head = qualified(table, database) + cluster.on
    sql = f"CREATE TABLE {exists}{head}\n(\n    {body}\n)"
    for part in sorted((p for p in TABLE_PARTS if p.position >= 0), key=lambda p: p.position):
        clause = part.clause(ds)
        if cluster is not None and part.field == "engine" and ds.engine.type.endswith("MergeTree"):
            clause = f"ENGINE = {cluster.replicated(ds, table, nonce)}"
        if clause:
            sql += f"\n{clause}"
        if part.field == "engine" and ds.engine.type == "Null":
            break  # a Null table takes no keys or settings
    return sql


def create_distributed(name: str, cluster: ClusterSpec, shard_key: str | None) -> str:
    """The Distributed table ``name`` over ``<name>__local`` on every node, sharding
    inserts by ``shard_key`` (the datasource's ``shard_key:``, default ``rand()``)."""
    return (
        # the AS table named with its database: a server runs an ON CLUSTER statement
        # in database `default` (only the created table's own name gets the database)
        f"CREATE TABLE `{name}`{cluster.on} AS {qualified(local(name), cluster.database)}\n"
        f"ENGINE = Distributed({_string(cluster.name)}, {_string(cluster.database)}, "
        f"{_string(local(name))}, {shard_key or 'rand()'})"
    )


def own_table(name: str, columns: str, order: str, cluster: ClusterSpec | None) -> str:
    """``CREATE TABLE IF NOT EXISTS`` for one of rtp's own tables (deploy state,
    journal): on a cluster, one Replicated table whose replicas are every node (its path
    has no ``{shard}``), so each node reads all of it."""
    if cluster is None:
        return (
            f"CREATE TABLE IF NOT EXISTS `{name}` ({columns}) ENGINE = MergeTree ORDER BY {order}"
        )
    path = f"/clickhouse/tables/rtp/{cluster.database}/{name}"
    return (
        f"CREATE TABLE IF NOT EXISTS `{name}`{cluster.on} ({columns}) ENGINE = "
        f"ReplicatedMergeTree({_string(path)}, {_string(cluster.replica)}) ORDER BY {order}"
    )


def _string(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _setting(value: object) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int | float):
        return str(value)
    return "'" + str(value).replace("\\", "\\\\").replace("'", "\\'") + "'"


def create_materialized_view(
    name: str,
    target: str,
    select_sql: str,
    database: str | None = None,
    cluster: ClusterSpec | None = None,
) -> str:
    """``CREATE MATERIALIZED VIEW name TO target AS <the pipe's composed SQL>``. With
    ``cluster``: ON CLUSTER, into the target's node-local table (``select_sql`` then
    reads node-local tables, named with their database: each node's view sees the rows
    its node stores)."""
    if cluster is not None:  # the target named with its database: see create_distributed
        on, to = cluster.on, qualified(local(target), cluster.database)
    else:
        on, to = "", qualified(target, database)
    return f"CREATE MATERIALIZED VIEW {qualified(name, database)}{on} TO {to}\nAS\n{select_sql}"
