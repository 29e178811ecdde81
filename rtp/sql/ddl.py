"""DDL text for the project model: tables for datasources, views for materialized pipes.

The user's expressions (types, keys, TTL, defaults) are placed into the statement as
they wrote them; only names rtp chooses are quoted here.
"""

from __future__ import annotations

from rtp.project.model import Column, Datasource


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
        "SummingMergeTree": [f"({engine.option('columns')})" if engine.option("columns")
                             else None],
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


def create_table(ds: Datasource, database: str | None = None, *, name: str | None = None,
                 if_not_exists: bool = False) -> str:
    """``CREATE TABLE`` for a datasource (``name`` overrides the table name)."""
    lines = [column_sql(c) for c in ds.columns]
    lines += [f"INDEX `{i.name}` {i.expr} TYPE {i.type} GRANULARITY {i.granularity}"
              for i in ds.indexes]
    body = ",\n    ".join(lines)
    exists = "IF NOT EXISTS " if if_not_exists else ""
    sql = (f"CREATE TABLE {exists}{qualified(name or ds.name, database)}\n(\n    {body}\n)\n"
           f"ENGINE = {engine_sql(ds)}")
    if ds.engine.type == "Null":
        return sql
    if ds.partition_key:
        sql += f"\nPARTITION BY {ds.partition_key}"
    if ds.primary_key:
        sql += f"\nPRIMARY KEY ({', '.join(ds.primary_key)})"
    sql += f"\nORDER BY ({', '.join(ds.sorting_key)})" if ds.sorting_key else "\nORDER BY tuple()"
    if ds.ttl:
        sql += f"\nTTL {ds.ttl}"
    settings = list(ds.settings)
    if (ds.engine.type.endswith("MergeTree") and not ds.engine.type.startswith("Replicated")
            and DEDUP_SETTING not in dict(settings)):
        settings.append((DEDUP_SETTING, DEDUP_WINDOW))
    if settings:
        sql += "\nSETTINGS " + ", ".join(f"{k} = {_setting(v)}" for k, v in settings)
    return sql


def _setting(value) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int | float):
        return str(value)
    return "'" + str(value).replace("\\", "\\\\").replace("'", "\\'") + "'"


def create_materialized_view(name: str, target: str, select_sql: str,
                             database: str | None = None) -> str:
    """``CREATE MATERIALIZED VIEW name TO target AS <the pipe's composed SQL>``."""
    return (f"CREATE MATERIALIZED VIEW {qualified(name, database)} "
            f"TO {qualified(target, database)}\nAS\n{select_sql}")
