"""``q=`` on an endpoint: SQL over the pipe's result, read as the table ``_``
(Tinybird's ``/v0/pipes/<name>.json?q=SELECT count() FROM _``).

The caller's statement is parsed with sqlglot and must be one SELECT (or UNION / WITH)
with no ``SETTINGS`` or ``FORMAT`` clause: rtp sets the limits and the format. For a
token without ADMIN it may read nothing but ``_`` (no other table, no table function,
no function that reads files, URLs, other servers or tables).
Each ``_`` in the caller's text is then replaced by ``(<pipe's SQL>) AS _``: the
caller's own text runs, not sqlglot's regeneration of it.

For a non-admin the statement also passes /v0/sql's guard (:func:`rtp.sql.guard.guard_query`),
so ``q=`` and ``/v0/sql`` refuse the same functions and table functions.
"""

from __future__ import annotations

import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError, TokenError

from rtp.errors import RequestError
from rtp.sql.guard import guard_query


def _refused(message: str, *, code: str = "RTP400") -> RequestError:
    return RequestError(
        f"q: {message}",
        code=code,
        hint="q runs one SELECT over the endpoint's result, named _: e.g. q=SELECT count() FROM _",
    )


def check_over_result(q: str, *, admin: bool = False) -> tuple[str, list[tuple[int, int, bool]]]:
    """The statement (without a trailing ``;``) and the spans of its ``_`` tables as
    (start, end, has alias).

    Raises RequestError 400 (RTP400) when ``q`` is not one plain query, and 403 (RTP403)
    when a token without ADMIN reads anything but ``_``.
    """
    text = q.strip().rstrip(";").rstrip()
    if not text:
        raise _refused("the query is empty")
    try:
        trees = [t for t in sqlglot.parse(text, read="clickhouse") if t is not None]
    except (ParseError, TokenError, ValueError) as exc:
        raise _refused(f"cannot read the query: {str(exc).splitlines()[0]}") from None
    if len(trees) != 1:
        raise _refused("send one statement")
    tree = trees[0]
    if not isinstance(tree, exp.Query):
        raise _refused(f"only a SELECT runs here, not {tree.key.upper()}")
    for node in tree.walk():
        if isinstance(node, exp.Query) and (node.args.get("settings") or node.args.get("format")):
            raise _refused(
                "SETTINGS and FORMAT clauses are not allowed; the format is the URL's extension"
            )
    ctes = {c.alias_or_name for c in tree.find_all(exp.CTE)}
    if "_" in ctes:
        raise _refused("_ is the endpoint's result; name the CTE otherwise")
    spans: list[tuple[int, int, bool]] = []
    others: list[str] = []
    for table in tree.find_all(exp.Table):
        ident = table.this
        if not isinstance(ident, exp.Identifier) or table.args.get("db"):
            others.append(table.sql(dialect="clickhouse"))
            continue
        if table.name in ctes:
            continue
        if table.name != "_":
            others.append(table.name)
            continue
        meta = ident.meta or {}
        if meta.get("start") is None or ident.quoted:
            raise _refused("write the endpoint's result as a plain _")
        spans.append((meta["start"], meta["end"] + 1, bool(table.alias)))
    if admin:
        return text, spans
    if others:
        raise _refused(f"it may read only _, not {', '.join(others)}", code="RTP403")
    try:
        verdict = guard_query(text, admin=False)
    except RequestError as exc:
        raise _refused(exc.message, code=exc.code) from None
    beyond = sorted(set(verdict.tables) - {"_"})
    if beyond:
        raise _refused(f"it may read only _, not {', '.join(beyond)}", code="RTP403")
    if not spans:
        raise _refused("it must read the endpoint's result, _")
    return text, spans


def over_result(q: str, pipe_sql: str, *, admin: bool = False) -> str:
    """``q`` with each ``_`` table replaced by the pipe's statement. Raises as
    :func:`check_over_result`."""
    text, spans = check_over_result(q, admin=admin)
    for start, end, aliased in sorted(spans, reverse=True):
        sub = f"(\n{pipe_sql}\n)" + ("" if aliased else " AS _")
        text = text[:start] + sub + text[end:]
    return text
