"""Node SQL templates: Jinja2 with typed parameter functions and helpers.

``compile_template(sql)`` parses a node's SQL once and discovers its parameters from the
template's AST; ``Template.render(values)`` renders it with checked values. Every value
reaches the SQL text through ``rtp.sql.escape``: type functions return escaped literals,
and any other ``{{ expression }}`` output is quoted as a string literal unless it is
already safe SQL, so a template cannot splice a caller's raw text into a statement.

Tinybird's Tornado spellings (``{% end %}``, ``{% try %}``...) are rewritten to Jinja's by
``rtp.sql.tornado`` before parsing, line for line; Tinybird's helper functions
(``day_diff``, ``split_to_array``, ``JSON``, ``max_threads``...) are in ``_FUNCTIONS``.
"""

from __future__ import annotations

import datetime as dt
import difflib
import json
from dataclasses import dataclass, field

from jinja2 import TemplateSyntaxError, nodes, pass_context
from jinja2.ext import Extension
from jinja2.runtime import Undefined
from jinja2.sandbox import ImmutableSandboxedEnvironment

from rtp.errors import RequestError, SqlError, TemplateRaisedError
from rtp.sql import escape, segments
from rtp.sql.params import PARAM_FUNCTIONS, PARAM_OPTIONS, SCALAR_TYPES, Param, coerce
from rtp.sql.tornado import TornadoSyntaxError, to_jinja

# Tinybird's helpers (its sql_template function list and render namespace), and the
# Python builtins its templates use; each is implemented below, on typed values.
HELPERS = (
    "defined",
    "column",
    "columns",
    "sql_and",
    "error",
    "custom_error",
    "symbol",
    "Symbol",
    "Column",
    "table",
    "TABLE",
    "day_diff",
    "date_diff_in_seconds",
    "date_diff_in_minutes",
    "date_diff_in_hours",
    "date_diff_in_days",
    "split_to_array",
    "enumerate_with_last",
    "sql_unescape",
    "JSON",
    "bool",
    "max_threads",
    "cache_ttl",
    "backend_hint",
    "activate",
    "disable",
    "tb_secret",
    "tb_var",
)
BUILTINS = (
    "len",
    "int",
    "float",
    "abs",
    "min",
    "max",
    "round",
    "sum",
    "sorted",
    "list",
    "enumerate",
    "zip",
    "any",
    "all",
)
_JINJA_GLOBALS = (
    "range",
    "dict",
    "lipsum",
    "cycler",
    "joiner",
    "namespace",
    "loop",
    "true",
    "false",
    "none",
    "True",
    "False",
    "None",
    "caller",
)
TYPE_ALIASES = {"bool": "Boolean"}
# Tinybird's text for a parameter used without a value or a default
REQUIRED_MESSAGE = (
    "Required parameter is not defined. Check the parameters {name}. "
    "Please provide a value or set a default value in the pipe code."
)


class TemplateError(SqlError):
    """A template problem; ``line`` is 1-based within the template text, ``token`` is
    text to underline when known."""

    def __init__(
        self,
        message: str,
        *,
        line: int = 0,
        token: str | None = None,
        code: str = "RTP300",
        hint: str | None = None,
    ) -> None:
        super().__init__(message, code=code, hint=hint)
        self.line = line
        self.token = token


class SampleValues(dict):
    """Values for an offline check: rendering them marks the render as a check, where a
    name without a value renders a placeholder and ``error()`` a comment, as Tinybird's
    test mode does."""


@dataclass
class Template:
    source: str
    params: dict[str, Param] = field(default_factory=dict)
    _compiled: object = None
    jinja: str = ""  # ``source`` in Jinja spelling (same lines)
    # a template without parameters, rendered once: [for a call, for a check]
    _static: list = field(default_factory=lambda: [None, None], repr=False)
    # its text and parameter-dependent parts, when rtp.sql.segments covers it
    _plan: list | None = field(default=None, repr=False)

    def sample_values(self) -> SampleValues:
        """Values for offline checks: each parameter's example or default. A parameter
        with neither is left undefined, as Tinybird checks a template: its
        ``{% if defined(x) %}`` branches drop out, and a type function called without
        it renders a placeholder of its type (``Param.sample``)."""
        return SampleValues(
            {
                name: p.sample()
                for name, p in self.params.items()
                if p.declared and (p.example is not None or p.default is not None)
            }
        )

    def coerce_values(self, raw: dict) -> dict:
        """Check a caller's values against the declared parameters.

        Unknown names are passed through as text (they can only reach SQL quoted).
        Raises RequestError naming the first bad parameter.
        """
        out = {}
        for name, value in raw.items():
            param = self.params.get(name)
            out[name] = coerce(param, value) if param else value
        return out

    def render(self, values: dict, *, check: bool = False) -> str:
        """The SQL text for ``values`` (already coerced).

        ``check``: rendering for offline checks, where a name that has no value renders
        as Tinybird's placeholder instead of failing.
        Raises RequestError for a parameter used without a value or default (RTP401,
        Tinybird's "Required parameter is not defined") or a call to ``error()`` /
        ``custom_error()`` in the template (RTP402).
        """
        if self._compiled is None:
            return self.source
        check = check or isinstance(values, SampleValues)
        if not self.params:  # reads no value: the same text every call, rendered once
            memo = self._static[check]
            if memo is None:
                memo = self._static[check] = self._render({}, check)
            return memo
        return self._render(values, check)

    def _render(self, values: dict, check: bool) -> str:
        if self._plan is not None:  # only the parameter-dependent parts (rtp.sql.segments)
            present = {k: v for k, v in values.items() if v is not None}
            context = {"__params__": self.params, "__check__": check}
            return segments.render(self._plan, present, context, _finalize)
        context = {**_FUNCTIONS, **{k: v for k, v in values.items() if v is not None}}
        context["__params__"] = self.params
        context["__check__"] = check
        return self._compiled.render(context)


def strip_marker(sql: str) -> str:
    """Tinybird marks templated SQL with a leading ``%`` line; rtp always templates."""
    stripped = sql.lstrip()
    if stripped.startswith("%"):
        # drop the marker but keep its line, so template lines stay file lines
        return sql[: len(sql) - len(stripped)] + stripped[1:]
    return sql


def compile_template(sql: str) -> Template:
    """Parse a node's SQL and discover its parameters.

    Raises TemplateError with the template line for syntax errors (RTP300) and for
    unknown or malformed parameter functions (RTP301).
    """
    source = strip_marker(sql)
    try:
        jinja = to_jinja(source)
        ast = _ENV.parse(jinja)
    except TornadoSyntaxError as exc:
        raise TemplateError(
            f"template syntax error: {exc.message}",
            line=exc.line,
            hint="close each {% if %} / {% for %} with {% end %}",
        ) from None
    except TemplateSyntaxError as exc:
        raise TemplateError(
            f"template syntax error: {exc.message}",
            line=exc.lineno or 0,
            hint="template tags are {{ expression }} and {% statement %}",
        ) from None
    params = _discover(ast)
    try:
        compiled = _ENV.from_string(ast)
    except TemplateSyntaxError as exc:  # pragma: no cover - parse already succeeded
        raise TemplateError(exc.message or "template error", line=exc.lineno or 0) from None
    return Template(
        source=source,
        params=params,
        _compiled=compiled,
        jinja=jinja,
        _plan=segments.plan(ast, _FUNCTIONS),
    )


# -- discovery -------------------------------------------------------------------------


def _const(node: nodes.Node, what: str, line: int, names: dict | None = None):
    if isinstance(node, nodes.Const):
        return node.value
    if isinstance(node, nodes.Name) and names and node.name in names:
        return names[node.name]  # `{% set default_x = 10 %}` ... Int32(x, default_x)
    if isinstance(node, nodes.List | nodes.Tuple):
        return tuple(_const(item, what, line) for item in node.items)
    if isinstance(node, nodes.Neg) and isinstance(node.node, nodes.Const):
        return -node.node.value
    raise TemplateError(f"{what} must be a literal value", line=line, code="RTP301")


def _discover(ast: nodes.Template) -> dict[str, Param]:
    params: dict[str, Param] = {}
    constants = {
        a.target.name: a.node.value
        for a in ast.find_all(nodes.Assign)
        if isinstance(a.target, nodes.Name) and isinstance(a.node, nodes.Const)
    }
    known = set(PARAM_FUNCTIONS) | set(HELPERS) | set(BUILTINS) | set(_JINJA_GLOBALS)
    assigned = {n.name for n in ast.find_all(nodes.Name) if n.ctx in ("store", "param")}
    for call in ast.find_all(nodes.Call):
        if not isinstance(call.node, nodes.Name):
            continue
        fname, line = call.node.name, call.lineno
        if fname not in known and fname not in assigned:
            close = difflib.get_close_matches(fname, [*PARAM_FUNCTIONS, *HELPERS], n=1)
            raise TemplateError(
                f"unknown function '{fname}'",
                line=line,
                token=fname,
                code="RTP301",
                hint=(f"did you mean '{close[0]}'? " if close else "")
                + "parameter types: "
                + ", ".join(SCALAR_TYPES[:4])
                + ", ..., Array",
            )
        if fname not in PARAM_FUNCTIONS and fname not in TYPE_ALIASES:
            continue
        param = _declaration(fname, call, constants)
        prev = params.get(param.name)
        if prev is not None and prev.type != param.type:
            raise TemplateError(
                f"parameter '{param.name}' is declared as {prev.type} and as {param.type}",
                line=line,
                token=param.name,
                code="RTP301",
                hint="declare each parameter with one type",
            )
        if prev is None or (param.default is not None and prev.default is None):
            params[param.name] = param
    # names used but never declared with a type (`{% if x %}`, `column(x)`): text params
    for name in sorted(_free_names(ast) - set(params) - known - assigned):
        line = next(n.lineno for n in ast.find_all(nodes.Name) if n.name == name)
        params[name] = Param(name=name, type="String", line=line, declared=False)
    return params


def _free_names(ast: nodes.Template) -> set[str]:
    return {n.name for n in ast.find_all(nodes.Name) if n.ctx == "load"}


def _looks_typed(arg) -> bool:
    """Array(x, 'Int32'): a type name (or a misspelt one, reported) rather than a default."""
    return isinstance(arg, str) and arg[:1].isupper() and arg.isalnum()


def _declaration(fname: str, call: nodes.Call, constants: dict | None = None) -> Param:
    line = call.lineno
    if not call.args or not isinstance(call.args[0], nodes.Name):
        raise TemplateError(
            f"{fname}() needs the parameter name first, e.g. {fname}(my_param)",
            line=line,
            token=fname,
            code="RTP301",
        )
    name = call.args[0].name
    args = [_const(a, f"{fname}({name}, ...) argument", line, constants) for a in call.args[1:]]
    kwargs = {
        kw.key: _const(kw.value, f"{fname}({name}, {kw.key}=...)", line, constants)
        for kw in call.kwargs
    }
    ptype = TYPE_ALIASES.get(fname, fname)
    if fname == "Array":
        # Tinybird: Array(x) holds text; Array(x, 'Int32'[, default]) names the type
        element = kwargs.pop("type", None) or (
            args.pop(0) if args and _looks_typed(args[0]) else "String"
        )
        if element not in SCALAR_TYPES:
            raise TemplateError(
                f"Array({name}, ...): unknown element type {element!r}",
                line=line,
                token=name,
                code="RTP301",
                hint="an element type such as 'Int32' or 'String'",
            )
        ptype = f"Array({element})"
    if args:
        kwargs.setdefault("default", args[0])
    for key in kwargs:
        if key not in (*PARAM_OPTIONS, "default", "separator"):
            raise TemplateError(
                f"{fname}() has no option '{key}'",
                line=line,
                token=key,
                code="RTP301",
                hint="options: default, " + ", ".join(PARAM_OPTIONS),
            )
    for key in ("min", "max"):
        bound = kwargs.get(key)
        if bound is not None and (isinstance(bound, bool) or not isinstance(bound, int | float)):
            raise TemplateError(
                f"{fname}({name}, {key}=...) must be a number", line=line, token=key, code="RTP301"
            )
    timezone = kwargs.get("timezone")
    if timezone is not None:
        try:
            coerce(Param(name, "DateTime", timezone=str(timezone)), "2000-01-01T00:00:00+00:00")
        except RequestError:
            raise TemplateError(
                f"{fname}({name}, timezone={timezone!r}): unknown timezone",
                line=line,
                token=name,
                code="RTP301",
                hint="an IANA name such as 'UTC' or 'Europe/Madrid'",
            ) from None
    enum = kwargs.get("enum") or ()
    if isinstance(enum, str):
        enum = tuple(e.strip() for e in enum.split(","))
    param = Param(
        name=name,
        type=ptype,
        default=kwargs.get("default"),
        description=str(kwargs.get("description") or ""),
        required=bool(kwargs.get("required", False)),
        example=kwargs.get("example"),
        enum=tuple(enum),
        min=kwargs.get("min"),
        max=kwargs.get("max"),
        line=line,
        timezone=str(timezone) if timezone is not None else None,
    )
    for what in ("default", "example"):
        value = getattr(param, what)
        if value is not None:
            try:
                coerce(param, value)
            except RequestError as exc:
                raise TemplateError(
                    f"{what} of {exc.message}", line=line, token=name, code="RTP301"
                ) from None
    return param


# -- runtime functions -----------------------------------------------------------------
# Type functions return Python values of their type (int, float, str, date, list...), as
# Tinybird's do, so templates can compute with them (`Int32(page, 0) * Int32(limit, 20)`).
# Nothing reaches the SQL text but through `_finalize` -> `escape.literal`, or as SqlText
# built by `escape` (identifiers, sql_and's conditions, the comments of max_threads...).


def _missing(value) -> bool:
    return isinstance(value, Undefined) or value is None


def _required(value, what: str = "parameter") -> RequestError:
    name = getattr(value, "_undefined_name", None) or what
    return RequestError(REQUIRED_MESSAGE.format(name=name), code="RTP401")


def _param_function(type_name: str):
    @pass_context
    def function(context, value=None, default=None, *args, **options):
        name = "parameter"
        if _missing(value):
            name = getattr(value, "_undefined_name", None) or name
            if default is None and options.get("default") is not None:
                default = options["default"]
            if default is None:
                if options.get("defined", True) is False:
                    return None  # Tinybird's `defined=False`: no value, no condition
                if not context.get("__check__"):
                    # missing: rendering it, or computing with it, is Tinybird's
                    # "Required parameter is not defined"; sql_and leaves it out
                    return _Missing(name=name)
                # a check renders what Tinybird's test mode does: a placeholder
                param = context.get("__params__", {}).get(name)
                return (
                    param if param and param.type == type_name else Param(name, type_name)
                ).sample()
            value = default
        # Values normally arrive coerced (Template.coerce_values names the parameter in
        # its errors); coercing again here keeps a raw value from ever reaching SQL.
        timezone = options.get("timezone")
        return coerce(
            Param(name, type_name, timezone=timezone if isinstance(timezone, str) else None), value
        )

    function.__name__ = type_name
    return function


@pass_context
def _array(context, value=None, element="String", default=None, **options):
    if "type" in options:
        element = options.pop("type")
    elif element not in SCALAR_TYPES:  # Array(x, 'a,b'): Tinybird's default, as text
        element, default = "String", element if default is None else default
    return _param_function(f"Array({element})")(context, value, default, **options)


def _defined(value=None) -> bool:
    return not _missing(value)


def _column(value=None, default=None):
    if not _defined(value):
        if default is None:
            raise RequestError("column() needs a value or a default", code="RTP400")
        value = default
    return escape.identifier(str(value))


def _columns(value=None, default=None, fn=None):
    if not _defined(value):
        value = default or ""
    names = value if isinstance(value, list | tuple) else str(value).split(",")
    out = [escape.identifier(n.strip()) for n in names if n.strip()]
    if fn is not None:  # Tinybird's columns(x, fn='sum'): sum(`a`), sum(`b`)
        out = [f"{escape.identifier(str(fn))[1:-1]}({n})" for n in out]
        if not str(fn).replace("_", "").isalnum():
            raise RequestError(f"columns(): {fn!r} is not a function name", code="RTP400")
    return escape.SqlText(", ".join(out))


def _symbol(value=None, quote="`"):
    if not _defined(value):
        raise _required(value)
    return escape.identifier(str(value))


# -- dates (Tinybird's day_diff, date_diff_in_*) --


def _moment(value, date_format: str | None) -> dt.datetime:
    if isinstance(value, dt.datetime):
        return value.replace(tzinfo=None)
    if isinstance(value, dt.date):
        return dt.datetime(value.year, value.month, value.day)
    if not isinstance(value, str):
        raise ValueError
    text = value.strip()
    if date_format:
        return dt.datetime.strptime(text, date_format)
    out = dt.datetime.fromisoformat(text)
    return out.astimezone(dt.timezone.utc).replace(tzinfo=None) if out.tzinfo else out


def _date_diff(unit: str, seconds: int):
    @pass_context
    def function(
        context,
        d0=None,
        d1=None,
        date_format=None,
        default=None,
        backup_date_format=None,
        none_if_error=False,
    ):
        if _missing(d0) or _missing(d1):
            if context.get("__check__"):
                return 0  # Tinybird's test mode
            if default is not None:
                return default
        try:
            a, b = _moment(d0, date_format), _moment(d1, date_format)
        except (ValueError, TypeError):
            try:
                if not backup_date_format:
                    raise ValueError
                a, b = _moment(d0, backup_date_format), _moment(d1, backup_date_format)
            except (ValueError, TypeError):
                if none_if_error:
                    return None
                if default is not None:
                    return default
                raise RequestError(
                    f"{function.__name__}: dates must be YYYY-MM-DD[ hh:mm:ss], got "
                    f"{_shown(d0)} and {_shown(d1)}",
                    code="RTP400",
                ) from None
        return int(abs((b - a).total_seconds()) // seconds)

    function.__name__ = f"date_diff_in_{unit}"
    return function


def _shown(value) -> str:
    return "nothing" if _missing(value) else repr(str(value))[:40]


@pass_context
def _day_diff(context, d0=None, d1=None, default=None):
    if _missing(d0) or _missing(d1):
        if context.get("__check__"):
            return 0
        if default is not None:
            return default
    try:
        a, b = _moment(d0, None).date(), _moment(d1, None).date()
    except (ValueError, TypeError):
        if default is not None:
            return default
        raise RequestError(
            f"day_diff: dates must be YYYY-MM-DD, got {_shown(d0)} and {_shown(d1)}", code="RTP400"
        ) from None
    return abs((b - a).days)


# -- text, lists, JSON --


def _split_to_array(value=None, default="", separator=","):
    if _missing(value):
        value = default
    if isinstance(value, list | tuple):
        return list(value)
    return [part.strip() for part in str(value).split(separator or ",")]


def _enumerate_with_last(items):
    items = list(items)
    return [(i == len(items) - 1, item) for i, item in enumerate(items)]


def _json(value=None, default=None):
    if _missing(value):
        if default is None:
            raise _required(value)
        value = default
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            raise RequestError(
                f"parameter must be JSON, got {_shown(value)}", code="RTP400"
            ) from None
    return value


def _sql_unescape(value=None, what=""):
    """Tinybird's sql_unescape: the caller's ``\\x`` for each x in ``what`` becomes x
    (for LIKE patterns); the text is still a quoted literal when rendered."""
    if _missing(value):
        raise _required(value)
    text = str(value)
    for char in str(what):
        text = text.replace("\\" + char, char)
    return text


def _int(value=0, *base):
    try:
        return int(value, *base) if base else int(value)
    except (TypeError, ValueError, OverflowError):
        raise RequestError(f"int(): {_shown(value)} is not an integer", code="RTP400") from None


def _float(value=0.0):
    try:
        out = float(value)
    except (TypeError, ValueError, OverflowError):
        raise RequestError(f"float(): {_shown(value)} is not a number", code="RTP400") from None
    return out


def _len(value=None):
    if _missing(value):
        raise _required(value)
    return len(value)


# -- settings and hints: rendered as SQL comments (rtp sets a query's limits itself) --

CACHE_TTLS = ("5s", "1m", "5m", "30m", "1h")  # Tinybird's accepted cache_ttl values


def _max_threads(value=None):
    try:
        return escape.SqlText(f"/* max_threads {int(value)} */")
    except (TypeError, ValueError):
        return escape.SqlText("/* max_threads: wrong argument */")


def _cache_ttl(value=None):
    if value not in CACHE_TTLS:
        raise RequestError(
            f"Invalid TTL cache expression, valid expressions are {CACHE_TTLS}", code="RTP400"
        )
    return escape.SqlText(f"/* cache_ttl {value} */")


def _hint(kind: str):
    def function(value=None):
        word = "".join(c for c in str(value) if c.isalnum() or c == "_")
        return escape.SqlText(f"/* {kind} {word} */")

    return function


def _tb_secret(name=None, default=None):
    """Tinybird's workspace secrets: rtp has none, so the default (a value, rendered
    quoted) or Tinybird's error."""
    if default is not None:
        return default
    raise RequestError(
        f"Cannot access secret '{name}'. Check the secret exists in the "
        "Workspace and the token has the required scope.",
        code="RTP400",
    )


# Tinybird's sql_and operators (its sql_template: in, not_in, gt, lt, gte, lte; no
# suffix is `=`), plus rtp's `__not` for `!=`.
SQL_AND_OPERATORS = {
    "": "=",
    "gt": ">",
    "gte": ">=",
    "lt": "<",
    "lte": "<=",
    "not": "!=",
    "in": "IN",
    "not_in": "NOT IN",
}


def split_condition(key: str) -> tuple[str, str]:
    """``col__op`` -> (column, operator suffix), as Tinybird splits it: at the last
    ``__``. A key whose suffix is no operator is a column name (ClickHouse allows ``__``
    in names) compared with ``=``; ``rtp check`` warns about it, it is most likely a
    misspelt operator."""
    col, sep, op = key.rpartition("__")
    if not sep or not col or op not in SQL_AND_OPERATORS:
        return key, ""
    return col, op


def unknown_operators(template: Template) -> list[tuple[str, int]]:
    """(key, template line) of each ``sql_and(...)`` keyword whose ``__suffix`` is not
    an operator, for ``rtp check`` to warn about."""
    found = []
    for call in _ENV.parse(template.jinja or template.source).find_all(nodes.Call):
        if isinstance(call.node, nodes.Name) and call.node.name == "sql_and":
            for kw in call.kwargs:
                col, sep, op = kw.key.rpartition("__")
                if sep and col and op not in SQL_AND_OPERATORS:
                    found.append((kw.key, call.lineno))
    return found


def _sql_and(**conditions):
    parts = []
    for key, value in conditions.items():
        if not _defined(value):
            continue  # not sent: no condition (Tinybird's `defined=False` idiom)
        col, op = split_condition(key)
        items = value
        if op in ("in", "not_in"):
            if isinstance(items, str):
                items = items.split(",")  # text, comma-separated
            elif not isinstance(items, list | tuple):
                items = [items]
            if not items:  # IN an empty list: nothing matches (everything for NOT IN)
                parts.append("0" if op == "in" else "1")
                continue
            rendered = "(" + ", ".join(_literal(v) for v in items) + ")"
        elif isinstance(items, list | tuple):
            raise RequestError(
                f"sql_and: '{key}' compares with one value, not a list",
                code="RTP400",
                hint="use __in or __not_in for lists",
            )
        else:
            rendered = _literal(value)
        parts.append(f"{escape.identifier(col)} {SQL_AND_OPERATORS[op]} {rendered}")
    return escape.SqlText(" AND ".join(parts) if parts else "1")


def _literal(value) -> escape.SqlText:
    try:
        if isinstance(value, dict):
            return escape.quote_string(json.dumps(value, ensure_ascii=False))
        return escape.literal(value)
    except ValueError as exc:
        raise RequestError(f"cannot render value: {exc}", code="RTP400") from None


@pass_context
def _error(context, message="error", status=400):
    if context.get("__check__"):  # Tinybird's test mode renders it as a comment
        return escape.SqlText("/* error */")
    raise TemplateRaisedError(str(message), status=int(status))


@pass_context
def _custom_error(context, body=None, status=400):
    """Tinybird's custom_error({'error': ..., 'code': ...}[, status])."""
    if context.get("__check__"):
        return escape.SqlText("/* error */")
    message = body.get("error", body) if isinstance(body, dict) else body
    raise TemplateRaisedError(str(message), status=int(status))


_FUNCTIONS = {
    **{t: _param_function(t) for t in SCALAR_TYPES},
    "bool": _param_function("Boolean"),
    "Array": _array,
    "defined": _defined,
    "column": _column,
    "Column": _symbol,
    "columns": _columns,
    "sql_and": _sql_and,
    "error": _error,
    "custom_error": _custom_error,
    "symbol": _symbol,
    "Symbol": _symbol,
    "table": _symbol,
    "TABLE": _symbol,
    "day_diff": _day_diff,
    **{
        f"date_diff_in_{u}": _date_diff(u, s)
        for u, s in (("seconds", 1), ("minutes", 60), ("hours", 3600), ("days", 86400))
    },
    "split_to_array": _split_to_array,
    "enumerate_with_last": _enumerate_with_last,
    "sql_unescape": _sql_unescape,
    "JSON": _json,
    "max_threads": _max_threads,
    "cache_ttl": _cache_ttl,
    "backend_hint": _hint("backend_hint"),
    "activate": _hint("activate"),
    "disable": _hint("disable"),
    "tb_secret": _tb_secret,
    "tb_var": _tb_secret,
    "len": _len,
    "int": _int,
    "float": _float,
    "abs": abs,
    "min": min,
    "max": max,
    "round": round,
    "sum": sum,
    "sorted": sorted,
    "list": list,
    "enumerate": enumerate,
    "zip": zip,
    "any": any,
    "all": all,
}
assert set(_FUNCTIONS) >= set(HELPERS) | set(BUILTINS)

PLACEHOLDER = "__no_value__"  # Tinybird's text for a name without a value in checks


@pass_context
def _finalize(context, value):
    """Every ``{{ expression }}`` output passes here: safe SQL as is, anything else as a
    literal. This is what keeps a bare ``{{ param }}`` from splicing raw text."""
    if isinstance(value, escape.SqlText):
        return value
    if isinstance(value, Undefined):
        if context.get("__check__"):
            return escape.quote_string(PLACEHOLDER)
        raise _required(value)
    return _literal(value)


class _Missing(Undefined):
    """A name without a value: Tinybird's None (`x is None` holds). Anything computed
    from it is Tinybird's "Required parameter is not defined" (RTP401)."""

    __slots__ = ()

    def _fail_with_undefined_error(self, *args, **kwargs):
        raise _required(self)


# Jinja binds the operators to the base class's method: rebind them to ours
for _name, _attr in vars(Undefined).items():
    if _attr is Undefined._fail_with_undefined_error:
        setattr(_Missing, _name, _Missing._fail_with_undefined_error)


class TryExtension(Extension):
    """Tinybird's ``{% try %}...{% except %}...{% end %}``: the except part renders when
    the try part fails on a caller's value (a RequestError)."""

    tags = {"try"}
    _count = 0

    def parse(self, parser):
        lineno = next(parser.stream).lineno
        body = parser.parse_statements(("name:except", "name:endtry"))
        handler: list = []
        if parser.stream.current.test("name:except"):
            next(parser.stream)
            while parser.stream.current.type != "block_end":
                next(parser.stream)  # `except ValueError`: any failure, as Tinybird
            handler = parser.parse_statements(("name:endtry",), drop_needle=True)
        else:
            next(parser.stream)
        TryExtension._count += 1
        names = [f"__try_body_{self._count}", f"__try_except_{self._count}"]
        return [
            nodes.Macro(names[0], [], [], body).set_lineno(lineno),
            nodes.Macro(names[1], [], [], handler).set_lineno(lineno),
            nodes.Output(
                [self.call_method("_attempt", [nodes.Name(n, "load") for n in names])]
            ).set_lineno(lineno),
        ]

    @staticmethod
    def _attempt(body, handler):
        try:
            return escape.SqlText(body())
        except RequestError as exc:
            if exc.code == "RTP402":  # error()/custom_error(): the author's answer
                raise
            return escape.SqlText(handler())


_ENV = ImmutableSandboxedEnvironment(
    finalize=_finalize,
    autoescape=False,
    keep_trailing_newline=True,
    undefined=_Missing,
    extensions=[TryExtension, "jinja2.ext.loopcontrols"],
)
_ENV.tests["none"] = lambda value: value is None or isinstance(value, Undefined)
