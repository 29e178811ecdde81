"""A node's template split once into its static text and its parameter-dependent parts.

Most node templates are SQL text with a few ``{{ Type(param, ...) }}`` calls and
``{% if defined(param) %}`` blocks. For those, :func:`plan` turns the Jinja syntax tree
into a list of pieces, once, at compile time: text kept as it is, and for each
``{{ ... }}`` or ``{% if %}`` a small Python closure. A call then renders only those
parts, calling the same functions (:data:`rtp.sql.template._FUNCTIONS`) and the same
``_finalize`` (every value still reaches the SQL through ``rtp.sql.escape``) as Jinja's
compiled template would, without building a Jinja context and its sandbox calls (about
half of a render's time).

What a plan covers: text, ``{{ expression }}`` and ``{% if %}/{% elif %}/{% else %}``,
where an expression is a literal (numbers, text, lists), a parameter's name, a call of
one of rtp's template functions with such arguments, or ``not``/``and``/``or`` of those.
Anything else (``{% set %}``, ``{% for %}``, ``{% try %}``, filters, arithmetic,
comparisons...) makes :func:`plan` return None and the template renders through Jinja
as before. ``tests/test_template.py`` checks both paths give the same text.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from jinja2 import nodes

Piece = Any  # str | ("out", evaluate) | ("if", [(test, pieces)...], else pieces)
Evaluate = Callable[[dict, dict], Any]  # (values, context) -> value


class _Unsupported(Exception):
    """The template uses something a plan does not cover."""


def plan(ast: nodes.Template, functions: dict[str, Callable]) -> list[Piece] | None:
    """The pieces of a parsed template, or None when Jinja must render it."""
    try:
        return _pieces(ast.body, functions)
    except _Unsupported:
        return None


def render(pieces: list[Piece], values: dict, context: dict, finalize: Callable) -> str:
    """The text for ``values`` (already without None values); ``context`` holds what the
    template functions read (``__check__``, ``__params__``)."""
    out: list[str] = []
    _emit(pieces, values, context, finalize, out)
    return "".join(out)


def _emit(pieces, values, context, finalize, out: list[str]) -> None:
    for piece in pieces:
        if type(piece) is str:
            out.append(piece)
        elif piece[0] == "out":
            out.append(str(finalize(context, piece[1](values, context))))
        else:
            for test, body in piece[1]:
                if test(values, context):
                    _emit(body, values, context, finalize, out)
                    break
            else:
                _emit(piece[2], values, context, finalize, out)


def _pieces(body: list[nodes.Node], functions) -> list[Piece]:
    out: list[Piece] = []
    for node in body:
        if isinstance(node, nodes.Output):
            for child in node.nodes:
                if isinstance(child, nodes.TemplateData):
                    out.append(child.data)
                else:
                    out.append(("out", _expression(child, functions)))
        elif isinstance(node, nodes.If):
            branches = [(_expression(node.test, functions), _pieces(node.body, functions))]
            for elif_ in node.elif_:
                branches.append(
                    (_expression(elif_.test, functions), _pieces(elif_.body, functions))
                )
            out.append(("if", branches, _pieces(node.else_, functions)))
        else:
            raise _Unsupported
    return out


def _expression(node: nodes.Node, functions) -> Evaluate:
    if isinstance(node, nodes.Const):
        value = node.value
        return lambda values, context: value
    if isinstance(node, nodes.Neg) and isinstance(node.node, nodes.Const):
        value = -node.node.value
        return lambda values, context: value
    if isinstance(node, nodes.List | nodes.Tuple):
        items = [_expression(item, functions) for item in node.items]
        kind = list if isinstance(node, nodes.List) else tuple
        return lambda values, context: kind(item(values, context) for item in items)
    if isinstance(node, nodes.Name) and node.ctx == "load" and node.name not in functions:
        from rtp.sql.template import _Missing

        name = node.name
        return lambda values, context: values[name] if name in values else _Missing(name=name)
    if isinstance(node, nodes.Not):
        inner = _expression(node.node, functions)
        return lambda values, context: not inner(values, context)
    if isinstance(node, nodes.And | nodes.Or):
        left, right = _expression(node.left, functions), _expression(node.right, functions)
        if isinstance(node, nodes.And):
            return lambda values, context: left(values, context) and right(values, context)
        return lambda values, context: left(values, context) or right(values, context)
    if (
        isinstance(node, nodes.Call)
        and isinstance(node.node, nodes.Name)
        and node.node.name in functions
        and node.dyn_args is None
        and node.dyn_kwargs is None
    ):
        return _call(node, functions)
    raise _Unsupported


def _call(node: nodes.Call, functions) -> Evaluate:
    function = functions[node.node.name]
    args = [_expression(a, functions) for a in node.args]
    kwargs = [(k.key, _expression(k.value, functions)) for k in node.kwargs]
    with_context = getattr(function, "jinja_pass_arg", None) is not None

    def call(values: dict, context: dict) -> Any:
        positional = [a(values, context) for a in args]
        named = {key: value(values, context) for key, value in kwargs}
        if with_context:
            return function(context, *positional, **named)
        return function(*positional, **named)

    return call
