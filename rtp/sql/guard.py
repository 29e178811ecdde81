"""What a caller's query may do: the scope check behind ``/v0/sql``.

:func:`guard_query` decides on the statement sqlglot parses (dialect ``clickhouse``),
never on its text, and denies by default. A non-admin caller may run one SELECT / WITH
query (UNION included) that reads nothing but plain tables of the project's database,
and the verdict lists those tables so the caller's token can be checked against each.
Refused for a non-admin, however it is spelled (case, quotes, comments, nesting):

- a statement sqlglot can't parse (we refuse what we can't analyse), several statements,
  anything but a query (SET, SHOW, DESCRIBE, EXPLAIN, INSERT ...), ``INTO OUTFILE``;
- a table function (``file()``, ``url()``, ``remote()``, ``numbers()`` ... every one),
  ``VALUES``, a table in another database (``system.*``, ``information_schema.*``);
- a function that reads beyond the query's tables: :data:`DENIED_FUNCTIONS` (``file``,
  ``dictGet*``, ``joinGet*``, the function forms of ``IN`` ...);
- a ``SETTINGS`` entry not in :data:`ALLOWED_SETTINGS`, and a ``FORMAT`` clause (the
  route's ``format`` chooses the output).

Names resolve as ClickHouse resolves them: a table CTE (``WITH x AS (SELECT ...)``) is
visible in its query and that query's subqueries, after its definition; inside its own
body its name is the real table (ClickHouse's CTEs are not recursive). A scalar
``WITH <expr> AS x`` names a value, never a table. ``x IN t`` / ``x IN (t)`` read table
``t``. Where engines differ we take the reading that needs more permissions: a WITH in
front of a UNION is taken to cover only its first SELECT (older ClickHouse attaches it
there; 24.x+ shares it with every branch).

ADMIN keeps today's behaviour: any one read-only statement (SELECT, WITH, SHOW,
DESCRIBE/DESC, EXPLAIN, EXISTS) without ``INTO OUTFILE``; statements sqlglot can't parse
(SHOW, EXISTS ...) are judged on sqlglot's tokens, so comments can't hide a keyword.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import sqlglot
from sqlglot import exp
from sqlglot.dialects.clickhouse import ClickHouse
from sqlglot.errors import ParseError, SqlglotError, TokenError
from sqlglot.tokens import TokenType

from rtp.errors import RequestError

READ_ONLY = ("SELECT", "WITH", "SHOW", "DESCRIBE", "DESC", "EXPLAIN", "EXISTS")

# Output settings a non-admin query may set: they only change how the answer is written.
ALLOWED_SETTINGS = frozenset(
    {
        "date_time_output_format",
        "output_format_decimal_trailing_zeros",
        "output_format_json_quote_64bit_integers",
        "output_format_json_quote_64bit_floats",
        "output_format_json_quote_decimals",
        "output_format_json_quote_denormals",
        "output_format_json_escape_forward_slashes",
        "output_format_json_named_tuples_as_objects",
        "output_format_csv_crlf_end_of_line",
        "format_csv_delimiter",
        "format_csv_null_representation",
    }
)

# Scalar functions (lower case) that read outside the query's tables: files, other
# tables or dictionaries by name, the host, the server's configuration, Keeper.
# Every table function is refused as a table; their names are listed too so a scalar
# spelling (file('x') is both) can't slip through.
DENIED_FUNCTIONS = frozenset(
    {
        # files, URLs, other servers and databases (table functions and scalar file())
        "file",
        "filecluster",
        "url",
        "urlcluster",
        "s3",
        "s3cluster",
        "gcs",
        "cosn",
        "oss",
        "remote",
        "remotesecure",
        "cluster",
        "clusterallreplicas",
        "mysql",
        "postgresql",
        "sqlite",
        "mongodb",
        "redis",
        "jdbc",
        "odbc",
        "hdfs",
        "hdfscluster",
        "azureblobstorage",
        "azureblobstoragecluster",
        "input",
        "executable",
        "merge",
        "dictionary",
        "view",
        "viewifpermitted",
        "loop",
        "iceberg",
        "icebergs3",
        "icebergazure",
        "iceberghdfs",
        "iceberglocal",
        "deltalake",
        "hudi",
        "arrowflight",
        "mergetreeindex",
        "mergetreeprojection",
        "timeseriesdata",
        "timeseriesmetrics",
        "timeseriestags",
        "ytsaurus",
        "paimon",
        "prometheusquery",
        "kql",
        # other tables or dictionaries named in an argument
        "joinget",
        "joingetornull",
        "hascolumnintable",
        "in",
        "notin",
        "globalin",
        "globalnotin",
        "nullin",
        "notnullin",
        "globalnullin",
        "globalnotnullin",
        "inignoreset",
        "notinignoreset",
        "globalinignoreset",
        "globalnotinignoreset",
        "nullinignoreset",
        "notnullinignoreset",
        "globalnullinignoreset",
        "globalnotnullinignoreset",
        "__getscalar",
        # the host and the server's configuration
        "getserversetting",
        "getmergetreesetting",
        "getmacro",
        "getclienthttpheader",
        "catboostevaluate",
        "modelevaluate",
        "addresstoline",
        "addresstolinewithinlines",
        "addresstosymbol",
        "demangle",
        "filesystemavailable",
        "filesystemcapacity",
        "filesystemfree",
        "filesystemunreserved",
        "generateserialid",
    }
)
DENIED_PREFIXES = ("dict",)  # dictGet*, dictHas, dictIsIn, dictGetHierarchy ...

# A name ClickHouse resolves to a (table) function sqlglot knows by another class,
# e.g. generate_series -> GenerateSeries: refuse those classes too.
_DENIED_CLASSES: tuple[type, ...] = ()


@dataclass(frozen=True)
class Verdict:
    """A statement :func:`guard_query` lets through."""

    sql: str  # the statement as sent, without a trailing ';' (and, for a non-admin, its
    # final SETTINGS clause, lifted into ``settings``)
    tables: tuple[str, ...]  # plain tables it reads (CTEs resolved), sorted
    kind: str  # first keyword: SELECT, WITH, SHOW ...
    settings: tuple[tuple[str, str], ...] = ()  # allow-listed settings (name, literal)


def guard_query(
    sql: str, *, admin: bool, database: str | None = None, lift_settings: bool = False
) -> Verdict:
    """The verdict on ``sql`` for an ADMIN (``admin``) or any other caller.
    ``database`` is the project's database: ``<database>.<table>`` counts as ``<table>``.
    ``lift_settings``: take the statement's final SETTINGS clause out of ``Verdict.sql``
    into ``Verdict.settings`` (for a caller's query run under rtp's read-only clause).

    Raises RequestError RTP400 (status 400) for what no caller may send here (empty,
    several statements, not read-only, ``INTO OUTFILE``) and what a non-admin may not
    send (a statement sqlglot can't parse, a FORMAT clause, a setting outside the
    allow-list); RTP403 (status 403) when a non-admin's statement needs ADMIN (SHOW,
    DESCRIBE, EXPLAIN, EXISTS) or reaches beyond the project's tables (table functions,
    other databases, denied functions).
    """
    text = sql.strip().rstrip(";").strip()
    tokens = _tokens(text)
    if not tokens:
        raise RequestError("the query is empty", code="RTP400", hint="pass ?q=SELECT ...")
    head = next((t.text.upper() for t in tokens if t.token_type != TokenType.L_PAREN), "")
    if sum(t.token_type == TokenType.SEMICOLON for t in tokens):
        raise RequestError("send one statement at a time", code="RTP400")
    if head not in READ_ONLY or any(
        t.text.upper() == "OUTFILE" and "STRING" not in t.token_type.name for t in tokens
    ):
        raise _not_read_only(head)
    if head not in ("SELECT", "WITH"):
        if admin:  # SHOW, EXISTS, EXPLAIN ...: sqlglot can't read most; the engine can
            return Verdict(text, (), head)
        raise RequestError(
            f"only SELECT / WITH queries run for this token, not {head}",
            code="RTP403",
            hint="SHOW, DESCRIBE, EXPLAIN and EXISTS need an ADMIN token",
        )
    try:
        trees = [t for t in sqlglot.parse(text, read="clickhouse") if t is not None]
    except (ParseError, TokenError, ValueError, SqlglotError, RecursionError) as exc:
        if admin:  # the engine has the last word on an ADMIN's query
            return Verdict(text, (), head)
        raise RequestError(
            f"the query can't be analysed: {_first_line(exc)}",
            code="RTP400",
            hint="only SELECT / WITH queries sqlglot "
            "(dialect clickhouse) can read run for non-admin tokens",
        ) from None
    if len(trees) != 1:
        raise RequestError("send one statement at a time", code="RTP400")
    tree = trees[0]
    if not isinstance(tree, exp.Query):
        raise _not_read_only(head)
    if admin:  # any setting, but in rtp's read-only clause too (see _lift_settings)
        sql, settings = _lift_settings(text, tokens) if lift_settings else (text, ())
        return Verdict(sql, (), head, settings)
    try:
        _check_nodes(tree, database)
        tables = tuple(sorted(_tables_read(tree, database)))
    except RecursionError:
        raise RequestError("the query is nested too deeply to be analysed", code="RTP400") from None
    text, settings = _lift_settings(text, tokens) if lift_settings else (text, ())
    return Verdict(text, tables, head, settings)


def _lift_settings(text: str, tokens: list) -> tuple[str, tuple[tuple[str, str], ...]]:
    """The statement without its final top-level ``SETTINGS`` clause, and that clause's
    (allow-listed, already checked) settings. A caller's query runs under rtp's
    ``readonly = 1``, which refuses any SETTINGS of the query's own; the allowed output
    settings travel in rtp's clause instead. Inner SETTINGS clauses stay (the engine
    ignores a subquery's settings under readonly)."""
    depth, start = 0, None
    for i, token in enumerate(tokens):
        if token.token_type == TokenType.L_PAREN:
            depth += 1
        elif token.token_type == TokenType.R_PAREN:
            depth -= 1
        elif (
            depth == 0
            and token.text.upper() == "SETTINGS"
            and "STRING" not in (token.token_type.name)
        ):
            start = i
    if start is None:
        return text, ()
    clause = tokens[start + 1 :]
    pairs = []
    for j in range(0, len(clause), 4):  # name = value [,]
        name, eq, value = (clause + [None, None, None])[j : j + 3]
        if name is None or eq is None or value is None or eq.text != "=":
            raise RequestError("the SETTINGS clause can't be read", code="RTP400")
        literal = f"'{value.text}'" if value.token_type == TokenType.STRING else value.text
        pairs.append((name.text.lower(), literal))
    return text[: tokens[start].start].rstrip(), tuple(pairs)


class _Tokenizer(ClickHouse.Tokenizer):
    # sqlglot folds what follows SHOW, EXPLAIN ... into one string token; keep the words
    # so that ';' and OUTFILE are seen there too
    COMMANDS: set = set()


def _tokens(text: str) -> list:
    try:
        return _Tokenizer(dialect=ClickHouse()).tokenize(text)
    except (TokenError, SqlglotError, ValueError) as exc:
        raise RequestError(f"the query can't be read: {_first_line(exc)}", code="RTP400") from None


def _first_line(exc: Exception) -> str:
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


def _not_read_only(word: str) -> RequestError:
    return RequestError(
        f"only read-only statements run through /v0/sql, not {word or 'this'}",
        code="RTP400",
        hint="SELECT, WITH, SHOW, DESCRIBE, EXPLAIN or EXISTS, without "
        "INTO OUTFILE; change tables with `rtp deploy` and add rows with POST /v0/events",
    )


def _out_of_scope(what: str) -> RequestError:
    return RequestError(
        f"{what}: a non-admin token reads the project's datasources only",
        code="RTP403",
        hint="use an ADMIN token for table functions, other databases, files and dictionaries",
    )


def function_name(node: exp.Func) -> str:
    """The name a function call was written with, lower case (``FiLe`` -> ``file``)."""
    if isinstance(node, exp.Anonymous):
        return node.name.lower()
    return node.sql_name().lower()


def denied(node: exp.Func) -> bool:
    """Whether a function call reads beyond the query's tables (files, URLs, other
    servers, tables or dictionaries by name, the host's configuration)."""
    name = function_name(node)
    return (
        name in DENIED_FUNCTIONS
        or name.startswith(DENIED_PREFIXES)
        or isinstance(node, _DENIED_CLASSES)
    )


def _check_nodes(tree: exp.Expression, database: str | None) -> None:
    """Every node of a non-admin query: functions, sources, settings, FORMAT, INTO."""
    for node in tree.walk():
        if isinstance(node, exp.Func) and denied(node):
            name = node.name if isinstance(node, exp.Anonymous) else function_name(node)
            raise _out_of_scope(f"the function {name}() is not allowed")
        if isinstance(node, exp.Table):
            _check_table(node, database)
        elif isinstance(node, exp.From | exp.Join):
            _check_source(node)
        elif isinstance(node, exp.Into | exp.Command | exp.Values | exp.Unnest | exp.Lateral):
            raise _out_of_scope(f"{node.key.upper()} is not allowed")
        if node.args.get("format") is not None and isinstance(node, exp.Query):
            raise RequestError(
                "a FORMAT clause is not allowed in the query",
                code="RTP400",
                hint="pass format=json|csv|ndjson|parquet",
            )
        for item in node.args.get("settings") or () if isinstance(node, exp.Query) else ():
            _check_setting(item)


def _check_table(table: exp.Table, database: str | None) -> None:
    if not isinstance(table.this, exp.Identifier):
        name = table.this.name if isinstance(table.this, exp.Func) else table.this.key
        raise _out_of_scope(f"the table function {name or table.this.key}() is not allowed")
    alias = table.args.get("alias")
    if table.args.get("catalog") or (alias is not None and alias.args.get("columns")):
        raise _out_of_scope(f"'{table.sql('clickhouse')}' is not a table of the project")
    if table.db and table.db != database:
        raise _out_of_scope(f"the table {table.db}.{table.name} is in another database")


def _check_source(node: exp.From | exp.Join) -> None:
    source = node.this
    if isinstance(node, exp.Join) and node.args.get("kind") == "ARRAY":
        return  # ARRAY JOIN unfolds an array of the row, it reads no table
    while isinstance(source, exp.Final | exp.Paren | exp.Alias):
        source = source.this
    if isinstance(source, exp.Subquery) and isinstance(source.this, exp.Table):
        source = source.this  # FROM (events)
    if not isinstance(source, exp.Table | exp.Subquery):
        raise _out_of_scope(f"reading from {source.key.upper()} is not allowed")


def _check_setting(item: exp.Expression) -> None:
    name = item.this.name if isinstance(item, exp.EQ) else item.name
    if name.lower() not in ALLOWED_SETTINGS or not isinstance(item, exp.EQ):
        raise RequestError(
            f"the setting '{name or item.sql()}' can't be changed by this token",
            code="RTP400",
            hint="allowed: " + ", ".join(sorted(ALLOWED_SETTINGS)),
        )
    if not isinstance(item.expression, exp.Literal):
        raise RequestError(f"the setting '{name}' takes a literal value", code="RTP400")


_IN = "\0in"  # marks a name read by `x IN name` (no identifier holds a NUL)


def _tables_read(tree: exp.Expression, database: str | None) -> set[str]:
    """The real tables ``tree`` reads, CTE references resolved the ClickHouse way.

    Raises RequestError RTP403 for ``x IN db.t`` in another database, RTP400 for a table
    the walk did not resolve (a construct this module doesn't know) and for ``x IN name``
    where ``name`` is also a value alias (ClickHouse then reads the table the alias
    names): refuse what we can't analyse."""
    found: set[tuple[str, str]] = set()
    seen: set[int] = set()
    _resolve(tree, frozenset(), {}, found, seen)
    for table in tree.find_all(exp.Table):
        if id(table) not in seen:
            raise RequestError(f"the query can't be analysed near '{table.sql()}'", code="RTP400")
    values = {a.alias for a in tree.find_all(exp.Alias)}
    values |= {c.alias_or_name for c in tree.find_all(exp.CTE) if c.args.get("scalar")}
    for db, name in found:
        if db == _IN and name in values:
            raise RequestError(
                f"'IN {name}' names a value alias and a table",
                code="RTP400",
                hint=f"write IN (SELECT ... FROM {name}) or rename the alias",
            )
        if db and db not in (_IN, database):
            raise _out_of_scope(f"the table {db}.{name} is in another database")
    return {name for _, name in found}


def _resolve(
    node: exp.Expression,
    visible: frozenset[str],
    override: dict[int, frozenset],
    found: set[tuple[str, str]],
    seen: set[int],
) -> None:
    visible = override.pop(id(node), visible)
    if isinstance(node, exp.Table) and isinstance(node.this, exp.Identifier):
        seen.add(id(node))
        if node.db or node.name not in visible:
            found.add((node.db, node.name))
    elif isinstance(node, exp.In):
        for item in [node.args.get("field"), *node.expressions]:
            while isinstance(item, exp.Paren):
                item = item.this
            if isinstance(item, exp.Column):
                # `x IN t`, `x IN (t)`, `x IN db.t`: ClickHouse reads table (or CTE) t
                if item.args.get("db") or item.args.get("catalog"):
                    raise _out_of_scope(f"'{item.sql()}' is not a table of the project")
                if item.table:
                    found.add((item.table, item.name))
                elif item.name not in visible:
                    found.add((_IN, item.name))
    inner = visible
    with_ = node.args.get("with_") if isinstance(node, exp.Query) else None
    if with_ is not None:
        for cte in with_.expressions:
            # not recursive: the body sees the CTEs defined before it, not itself
            _resolve(cte.this, inner, override, found, seen)
            if not cte.args.get("scalar"):
                inner = inner | {cte.alias_or_name}
        if isinstance(node, exp.SetOperation):
            first = node
            while isinstance(first, exp.SetOperation):
                first = first.this
            override[id(first)] = inner
            inner = visible
    for child in node.iter_expressions():
        if child is not with_:
            _resolve(child, inner, override, found, seen)


def _denied_classes() -> tuple[type, ...]:
    # Ask sqlglot which names it turns into a class of its own (ClickHouse would still
    # call the function named): a sqlglot upgrade can't silently un-deny one.
    classes = set()
    quiet = logging.getLogger("sqlglot")
    level = quiet.level
    quiet.setLevel(logging.ERROR)
    try:
        for name in DENIED_FUNCTIONS:
            try:
                node = sqlglot.parse_one(f"SELECT {name}('a', 'b')", read="clickhouse")
            except SqlglotError:
                continue
            func = node.expressions[0] if node.expressions else None
            if isinstance(func, exp.Func) and not isinstance(func, exp.Anonymous):
                classes.add(type(func))
    finally:
        quiet.setLevel(level)
    return tuple(classes)


_DENIED_CLASSES = _denied_classes()
