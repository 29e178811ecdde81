"""Node SQL templates: Jinja2 with typed parameter functions and helpers.

``compile_template(sql)`` parses a node's SQL once and discovers its parameters from the
template's AST; ``Template.render(values)`` renders it with checked values. Every value
reaches the SQL text through ``rtp.sql.escape``: type functions return escaped literals,
and any other ``{{ expression }}`` output is quoted as a string literal unless it is
already safe SQL, so a template cannot splice a caller's raw text into a statement.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field

from jinja2 import TemplateSyntaxError, nodes
from jinja2.runtime import Undefined
from jinja2.sandbox import ImmutableSandboxedEnvironment

from rtp.errors import RequestError, SqlError
from rtp.sql import escape
from rtp.sql.params import PARAM_FUNCTIONS, PARAM_OPTIONS, SCALAR_TYPES, Param, coerce

HELPERS = ("defined", "column", "columns", "sql_and", "error", "symbol")
_JINJA_GLOBALS = ("range", "dict", "lipsum", "cycler", "joiner", "namespace", "loop",
                  "true", "false", "none", "True", "False", "None")


class TemplateError(SqlError):
    """A template problem; ``line`` is 1-based within the template text, ``token`` is
    text to underline when known."""

    def __init__(self, message: str, *, line: int = 0, token: str | None = None,
                 code: str = "RTP300", hint: str | None = None) -> None:
        super().__init__(message, code=code, hint=hint)
        self.line = line
        self.token = token


@dataclass
class Template:
    source: str
    params: dict[str, Param] = field(default_factory=dict)
    _compiled: object = None

    def sample_values(self) -> dict:
        """Values for offline checks: each parameter's example, default or a neutral value."""
        return {name: p.sample() for name, p in self.params.items() if p.declared}

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

    def render(self, values: dict) -> str:
        """The SQL text for ``values`` (already coerced).

        Raises RequestError for a missing required parameter (RTP401) or a call to
        ``error()`` in the template (RTP402).
        """
        context = {**_FUNCTIONS, **{k: v for k, v in values.items() if v is not None}}
        context["__params__"] = self.params
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
        ast = _ENV.parse(source)
    except TemplateSyntaxError as exc:
        raise TemplateError(f"template syntax error: {exc.message}", line=exc.lineno or 0,
                            hint="template tags are {{ expression }} and {% statement %}") from None
    params = _discover(ast)
    try:
        compiled = _ENV.from_string(ast)
    except TemplateSyntaxError as exc:  # pragma: no cover - parse already succeeded
        raise TemplateError(exc.message or "template error", line=exc.lineno or 0) from None
    return Template(source=source, params=params, _compiled=compiled)


# -- discovery -------------------------------------------------------------------------


def _const(node: nodes.Node, what: str, line: int):
    if isinstance(node, nodes.Const):
        return node.value
    if isinstance(node, nodes.List | nodes.Tuple):
        return tuple(_const(item, what, line) for item in node.items)
    if isinstance(node, nodes.Neg) and isinstance(node.node, nodes.Const):
        return -node.node.value
    raise TemplateError(f"{what} must be a literal value", line=line, code="RTP301")


def _discover(ast: nodes.Template) -> dict[str, Param]:
    params: dict[str, Param] = {}
    known = set(PARAM_FUNCTIONS) | set(HELPERS) | set(_JINJA_GLOBALS)
    assigned = {n.name for n in ast.find_all(nodes.Name) if n.ctx in ("store", "param")}
    for call in ast.find_all(nodes.Call):
        if not isinstance(call.node, nodes.Name):
            continue
        fname, line = call.node.name, call.lineno
        if fname not in known and fname not in assigned:
            close = difflib.get_close_matches(fname, [*PARAM_FUNCTIONS, *HELPERS], n=1)
            raise TemplateError(
                f"unknown function '{fname}'", line=line, token=fname, code="RTP301",
                hint=(f"did you mean '{close[0]}'? " if close else "")
                + "parameter types: " + ", ".join(SCALAR_TYPES[:4]) + ", ..., Array",
            )
        if fname not in PARAM_FUNCTIONS:
            continue
        param = _declaration(fname, call)
        prev = params.get(param.name)
        if prev is not None and prev.type != param.type:
            raise TemplateError(
                f"parameter '{param.name}' is declared as {prev.type} and as {param.type}",
                line=line, token=param.name, code="RTP301",
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


def _declaration(fname: str, call: nodes.Call) -> Param:
    line = call.lineno
    if not call.args or not isinstance(call.args[0], nodes.Name):
        raise TemplateError(
            f"{fname}() needs the parameter name first, e.g. {fname}(my_param)",
            line=line, token=fname, code="RTP301",
        )
    name = call.args[0].name
    args = [_const(a, f"{fname}({name}, ...) argument", line) for a in call.args[1:]]
    kwargs = {kw.key: _const(kw.value, f"{fname}({name}, {kw.key}=...)", line)
              for kw in call.kwargs}
    ptype = fname
    if fname == "Array":
        if not args or args[0] not in SCALAR_TYPES:
            raise TemplateError(
                f"Array({name}, ...) needs an element type such as 'Int32' or 'String'",
                line=line, token=name, code="RTP301",
            )
        ptype = f"Array({args.pop(0)})"
    if args:
        kwargs.setdefault("default", args[0])
    for key in kwargs:
        if key not in (*PARAM_OPTIONS, "default"):
            raise TemplateError(
                f"{fname}() has no option '{key}'", line=line, token=key, code="RTP301",
                hint="options: default, " + ", ".join(PARAM_OPTIONS),
            )
    for key in ("min", "max"):
        bound = kwargs.get(key)
        if bound is not None and (isinstance(bound, bool)
                                  or not isinstance(bound, int | float)):
            raise TemplateError(f"{fname}({name}, {key}=...) must be a number", line=line,
                                token=key, code="RTP301")
    timezone = kwargs.get("timezone")
    if timezone is not None:
        try:
            coerce(Param(name, "DateTime", timezone=str(timezone)),
                   "2000-01-01T00:00:00+00:00")
        except RequestError:
            raise TemplateError(f"{fname}({name}, timezone={timezone!r}): unknown timezone",
                                line=line, token=name, code="RTP301",
                                hint="an IANA name such as 'UTC' or 'Europe/Madrid'"
                                ) from None
    enum = kwargs.get("enum") or ()
    if isinstance(enum, str):
        enum = tuple(e.strip() for e in enum.split(","))
    param = Param(
        name=name, type=ptype, default=kwargs.get("default"),
        description=str(kwargs.get("description") or ""),
        required=bool(kwargs.get("required", False)), example=kwargs.get("example"),
        enum=tuple(enum), min=kwargs.get("min"), max=kwargs.get("max"), line=line,
        timezone=str(timezone) if timezone is not None else None,
    )
    for what in ("default", "example"):
        value = getattr(param, what)
        if value is not None:
            try:
                coerce(param, value)
            except RequestError as exc:
                raise TemplateError(f"{what} of {exc.message}", line=line, token=name,
                                    code="RTP301") from None
    return param


# -- runtime functions -----------------------------------------------------------------


class ParamValue(escape.SqlText):
    """What a type function renders: the escaped literal, with the typed value kept
    (None for a missing optional value) so ``sql_and`` can build ``IN (...)`` lists and
    leave out conditions whose value was not sent."""

    value: object = None


def _rendered(sql: str, value) -> ParamValue:
    out = ParamValue(sql)
    out.value = value
    return out


def _param_function(type_name: str):
    def function(value=None, default=None, *args, **options):
        name = "parameter"
        if isinstance(value, Undefined) or value is None:
            name = getattr(value, "_undefined_name", None) or name
            if default is None and options.get("default") is not None:
                default = options["default"]
            if default is None:
                if options.get("required"):
                    raise RequestError(f"parameter '{name}' is required", code="RTP401")
                return _rendered("NULL", None)
            value = default
        # Values normally arrive coerced (Template.coerce_values names the parameter in
        # its errors); coercing again here keeps a raw value from ever reaching SQL.
        timezone = options.get("timezone")
        value = coerce(Param(name, type_name, timezone=timezone if isinstance(
            timezone, str) else None), value)
        return _rendered(escape.literal(value), value)

    function.__name__ = type_name
    return function


def _array(value=None, element="String", default=None, **options):
    return _param_function(f"Array({element})")(value, default, **options)


def _defined(value=None) -> bool:
    return not isinstance(value, Undefined) and value is not None


def _column(value=None, default=None):
    if not _defined(value):
        if default is None:
            raise RequestError("column() needs a value or a default", code="RTP400")
        value = default
    return escape.identifier(str(value))


def _columns(value=None, default=None):
    if not _defined(value):
        value = default or ""
    names = value if isinstance(value, list | tuple) else str(value).split(",")
    return escape.SqlText(", ".join(escape.identifier(n.strip()) for n in names if n.strip()))


# Tinybird's sql_and operators (its sql_template: in, not_in, gt, lt, gte, lte; no
# suffix is `=`), plus rtp's `__not` for `!=`.
SQL_AND_OPERATORS = {"": "=", "gt": ">", "gte": ">=", "lt": "<", "lte": "<=", "not": "!=",
                     "in": "IN", "not_in": "NOT IN"}


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
    for call in _ENV.parse(template.source).find_all(nodes.Call):
        if isinstance(call.node, nodes.Name) and call.node.name == "sql_and":
            for kw in call.kwargs:
                col, sep, op = kw.key.rpartition("__")
                if sep and col and op not in SQL_AND_OPERATORS:
                    found.append((kw.key, call.lineno))
    return found


def _sql_and(**conditions):
    parts = []
    for key, value in conditions.items():
        if not _defined(value) or (isinstance(value, ParamValue) and value.value is None):
            continue  # not sent: no condition (Tinybird's `defined=False` idiom)
        col, op = split_condition(key)
        items = value.value if isinstance(value, ParamValue) else value
        if op in ("in", "not_in"):
            if isinstance(items, str) and not isinstance(value, ParamValue):
                items = items.split(",")  # an undeclared name: text, comma-separated
            elif not isinstance(items, list | tuple):
                items = [items]
            if not items:  # IN an empty list: nothing matches (everything for NOT IN)
                parts.append("0" if op == "in" else "1")
                continue
            rendered = "(" + ", ".join(_literal(v) for v in items) + ")"
        elif isinstance(items, list | tuple):
            raise RequestError(f"sql_and: '{key}' compares with one value, not a list",
                               code="RTP400", hint="use __in or __not_in for lists")
        else:
            rendered = value if isinstance(value, ParamValue) else _literal(value)
        parts.append(f"{escape.identifier(col)} {SQL_AND_OPERATORS[op]} {rendered}")
    return escape.SqlText(" AND ".join(parts) if parts else "1")


def _literal(value) -> escape.SqlText:
    try:
        return escape.literal(value)
    except ValueError as exc:
        raise RequestError(f"cannot render value: {exc}", code="RTP400") from None


def _error(message="error", status=400):
    raise RequestError(str(message), code="RTP402", status=int(status))


_FUNCTIONS = {
    **{t: _param_function(t) for t in SCALAR_TYPES},
    "Array": _array,
    "defined": _defined,
    "column": _column,
    "columns": _columns,
    "sql_and": _sql_and,
    "error": _error,
    "symbol": _column,
}


def _finalize(value):
    """Every ``{{ expression }}`` output passes here: safe SQL as is, anything else as a
    literal. This is what keeps a bare ``{{ param }}`` from splicing raw text."""
    if isinstance(value, escape.SqlText):
        return value
    if isinstance(value, Undefined):
        return escape.SqlText("NULL")
    try:
        return escape.literal(value)
    except ValueError as exc:
        raise RequestError(f"cannot render value: {exc}", code="RTP400") from None


_ENV = ImmutableSandboxedEnvironment(
    finalize=_finalize, autoescape=False, keep_trailing_newline=True,
)
