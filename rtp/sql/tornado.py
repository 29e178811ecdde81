"""Tinybird's template syntax (Tornado's) read as rtp's (Jinja's), tag by tag.

Tinybird templates close every block with ``{% end %}``; Jinja names the block it closes
(``{% endif %}``, ``{% endfor %}``). :func:`to_jinja` walks the tags once, keeps the stack
of open blocks, and rewrites each ``{% end %}`` to the end tag of the block it closes, so a
file may use either spelling, or both. Other Tornado-only spellings are rewritten in place
(``{% comment %}``, ``{{!`` / ``{%!`` escapes, ``is None``). The text between tags is never
touched and no line break is added or removed, so template line numbers stay file line
numbers. Everything then renders in rtp's one Jinja sandbox with its typed functions.
"""

from __future__ import annotations

import re

# `{#...#}`, `{%...%}` and `{{...}}`; Tornado ends a tag at the first closing mark, as here.
_TAG = re.compile(r"\{#.*?#\}|\{%.*?%\}|\{\{.*?\}\}", re.S)
_BLOCK = re.compile(r"\{%(-?)(\s*)(.*?)(\s*)(-?)%\}", re.S)
# Jinja block tags that need an end tag (``set`` only in its block form, no ``=``)
_OPENERS = {"if", "for", "try", "macro", "call", "filter", "with", "autoescape", "raw", "block"}
# Python's `is None` / `is not None` are Jinja's `is none` test (quoted text is skipped)
_IS_NONE = re.compile(r"""('(?:\\.|[^'\\])*'|"(?:\\.|[^"\\])*")|\bis(\s+not)?\s+None\b""")


class TornadoSyntaxError(ValueError):
    """A block structure problem; ``line`` is 1-based."""

    def __init__(self, message: str, line: int) -> None:
        super().__init__(message)
        self.message = message
        self.line = line


def _is_none(text: str) -> str:
    return _IS_NONE.sub(lambda m: m.group(1) or f"is{m.group(2) or ''} none", text)


def to_jinja(source: str) -> str:
    """``source`` with Tornado block ends and spellings rewritten for Jinja.

    Raises TornadoSyntaxError for an ``{% end %}`` with no open block, a ``while`` loop
    (rtp renders no unbounded loops) or a block form Tinybird forbids.
    """
    out: list[str] = []
    stack: list[str] = []
    pos = 0
    for match in _TAG.finditer(source):
        tag = match.group(0)
        line = source.count("\n", 0, match.start()) + 1
        out.append(source[pos : match.start()])
        pos = match.end()
        if stack and stack[-1] == "raw" and not re.fullmatch(r"\{%-?\s*endraw\s*-?%\}", tag):
            out.append(tag)
            continue
        if tag.startswith("{{!") or tag.startswith("{%!"):
            # Tornado's escape: the braces themselves, then the rest as text
            out.append("{% raw %}" + tag[:2] + "{% endraw %}" + tag[3:])
            continue
        if tag.startswith("{#"):
            out.append(tag)
            continue
        if tag.startswith("{{"):
            out.append("{{" + _is_none(tag[2:-2]) + "}}")
            continue
        block = _BLOCK.fullmatch(tag)
        assert block is not None
        body = block.group(3)
        word = body.split(None, 1)[0] if body.strip() else ""
        if word in ("end", "end;"):
            if not stack:
                raise TornadoSyntaxError("extra {% end %}: no block is open here", line)
            opener = stack.pop()
            body = "end" + opener
        elif word.startswith("end") and word[3:] in (*_OPENERS, "set", "while"):
            if stack:
                stack.pop()
        elif word == "set" and "=" not in body:
            stack.append("set")
        elif word == "while":
            raise TornadoSyntaxError(
                "{% while %} loops are not supported; use {% for x in range(n) %}", line
            )
        elif word == "comment":
            out.append("{#" + tag[2:-2].replace("#}", "# }") + "#}")
            continue
        elif word in _OPENERS:
            stack.append(word)
        if word in ("if", "elif", "for", "set"):
            body = _is_none(body)
        out.append(
            "{%" + block.group(1) + block.group(2) + body + block.group(4) + block.group(5) + "%}"
        )
    out.append(source[pos:])
    return "".join(out)
