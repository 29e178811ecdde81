"""SQL analysis with sqlglot (dialect ``clickhouse``): what a statement reads.

sqlglot is used to *read* SQL only. Its regenerated text is never sent to ClickHouse
(it rewrites functions, e.g. ``toStartOfHour`` to ``dateTrunc``); statements are composed
from the user's own text in :mod:`rtp.sql.compose`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError, TokenError


@dataclass(frozen=True)
class TableRef:
    name: str
    start: int  # offset of the name in the SQL text
    end: int


_FROM_RE = re.compile(r"\b(?:FROM|JOIN)\s+([A-Za-z_][A-Za-z0-9_]*)\b(?!\s*\.)(?!\s*\()",
                      re.IGNORECASE)


def tables_read(sql: str) -> tuple[list[TableRef], bool]:
    """Unqualified tables a SELECT reads, minus its own CTEs, and whether sqlglot could
    parse it (when it can't, a conservative scan of FROM/JOIN clauses is used and
    ClickHouse has the final word)."""
    try:
        statements = sqlglot.parse(sql, read="clickhouse")
    except (ParseError, TokenError, ValueError):
        return _scan(sql), False
    refs: list[TableRef] = []
    for tree in statements:
        if tree is None:
            continue
        ctes = {c.alias_or_name for c in tree.find_all(exp.CTE)}
        for table in tree.find_all(exp.Table):
            ident = table.this
            if table.args.get("db") or not isinstance(ident, exp.Identifier):
                continue  # db.table or a table function such as numbers(10)
            if table.name in ctes:
                continue
            meta = ident.meta or {}
            start = meta.get("start")
            if start is None:
                found = re.search(rf"\b{re.escape(table.name)}\b", sql)
                start = found.start() if found else 0
                end = start + len(table.name)
            else:
                end = meta.get("end", start + len(table.name) - 1) + 1
            refs.append(TableRef(table.name, start, end))
    return refs, True


def _scan(sql: str) -> list[TableRef]:
    ctes = set(re.findall(r"\b([A-Za-z_][A-Za-z0-9_]*)\s+AS\s*\(", sql, re.IGNORECASE))
    return [TableRef(m.group(1), m.start(1), m.end(1)) for m in _FROM_RE.finditer(sql)
            if m.group(1) not in ctes]


def statement_count(sql: str) -> int | None:
    """How many statements the text holds (None when sqlglot can't tell)."""
    try:
        return len([s for s in sqlglot.parse(sql, read="clickhouse") if s is not None])
    except (ParseError, TokenError, ValueError):
        return None


def is_select(sql: str) -> bool | None:
    """Whether the statement is a query (SELECT, UNION, WITH ... SELECT); None if unknown."""
    try:
        tree = sqlglot.parse_one(sql, read="clickhouse")
    except (ParseError, TokenError, ValueError):
        return None
    return isinstance(tree, exp.Query)
