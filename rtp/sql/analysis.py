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


_FROM_RE = re.compile(
    r"\b(?:FROM|JOIN)\s+([A-Za-z_][A-Za-z0-9_]*)\b(?!\s*\.)(?!\s*\()", re.IGNORECASE
)


@dataclass(frozen=True)
class SqlFacts:
    """What one parse of a node's rendered SQL tells."""

    refs: list[TableRef]  # unqualified tables read, minus the statement's own CTEs
    parsed: bool  # False: sqlglot couldn't parse it; refs come from a FROM/JOIN scan
    statements: int | None = None  # how many statements the text holds
    is_query: bool | None = None  # SELECT / UNION / WITH ... SELECT


def analyze(sql: str) -> SqlFacts:
    """Parse once and collect the facts checks need. When sqlglot can't parse the text,
    a conservative scan of FROM/JOIN clauses is used and ClickHouse has the final word."""
    try:
        statements = [s for s in sqlglot.parse(sql, read="clickhouse") if s is not None]
    except (ParseError, TokenError, ValueError):
        return SqlFacts(_scan(sql), False)
    refs: list[TableRef] = []
    for tree in statements:
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
    is_query = bool(statements) and all(isinstance(t, exp.Query) for t in statements)
    return SqlFacts(refs, True, len(statements), is_query)


def _scan(sql: str) -> list[TableRef]:
    ctes = set(re.findall(r"\b([A-Za-z_][A-Za-z0-9_]*)\s+AS\s*\(", sql, re.IGNORECASE))
    return [
        TableRef(m.group(1), m.start(1), m.end(1))
        for m in _FROM_RE.finditer(sql)
        if m.group(1) not in ctes
    ]
