"""Read YAML keeping the position of every key and value.

PyYAML's composer gives each node a start mark; we build plain Python values from the
node tree and keep a side table ``path -> mark`` so later stages can point at the exact
line and column of any value (``Doc.loc(("columns", 2, "type"))``). Block scalars
(``sql: |``) also record where their text starts, so an error at offset N inside the SQL
maps to a line and column of the file.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import yaml

from rtp.errors import Location, ProjectError

Path_ = tuple  # a path into the document: keys and list indexes


@dataclass(frozen=True)
class TextOrigin:
    """Where a string value's text starts in its file, to map offsets inside it."""

    file: str
    line: int  # 1-based line of the text's first character
    column: int  # 1-based column of the first character of every line (block scalars)
    block: bool  # True for literal block scalars: text line i is file line `line + i`

    def locate(self, text: str, offset: int, length: int = 1) -> Location:
        """The file location of character ``offset`` of ``text``."""
        offset = max(0, min(offset, len(text)))
        line_index = text.count("\n", 0, offset)
        line_start = text.rfind("\n", 0, offset) + 1
        col_in_line = offset - line_start
        if self.block:
            return Location(self.file, self.line + line_index, self.column + col_in_line, length)
        if line_index == 0:
            return Location(self.file, self.line, self.column + col_in_line, length)
        # a folded or flow scalar: lines don't map one to one; point at the value's start
        return Location(self.file, self.line, self.column, length)


@dataclass
class Doc:
    """A parsed YAML file: its data and where each part of it came from."""

    file: str
    data: object
    marks: dict[Path_, tuple[int, int]] = field(default_factory=dict)
    key_marks: dict[Path_, tuple[int, int]] = field(default_factory=dict)
    origins: dict[Path_, TextOrigin] = field(default_factory=dict)
    lengths: dict[Path_, int] = field(default_factory=dict)
    spans: dict[Path_, tuple[int, int]] = field(default_factory=dict)  # text offsets of values

    def loc(self, path: Path_ = (), *, key: bool = False) -> Location:
        """Location of the value at ``path`` (or of its key with ``key=True``); falls
        back to the nearest parent that has one."""
        table = self.key_marks if key else self.marks
        p = tuple(path)
        while p and p not in table:
            p = p[:-1]
            table = self.marks
        line, col = table.get(p, (1, 1))
        length = self.lengths.get(tuple(path), 1) if p == tuple(path) and not key else 1
        if key and tuple(path) in self.key_marks:
            length = len(str(path[-1]))
        return Location(self.file, line, col, max(1, length))

    def origin(self, path: Path_) -> TextOrigin:
        o = self.origins.get(tuple(path))
        if o is None:
            line, col = self.marks.get(tuple(path), (1, 1))
            return TextOrigin(self.file, line, col, False)
        return o


def load_yaml(path: Path, rel: str) -> Doc:
    """Parse one YAML file.

    Raises ProjectError (RTP101) on a syntax error, naming the line and column, and
    (RTP105) on a key repeated in one mapping.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ProjectError(
            f"file is not UTF-8 text ({exc.reason})", code="RTP101", location=Location(rel)
        ) from None
    return parse_yaml(text, rel)


def parse_yaml(text: str, rel: str) -> Doc:
    """Parse YAML text; see :func:`load_yaml`.

    Each call gets its own loader (:class:`_DocLoader`): PyYAML's constructor remembers
    every node it built until its document ends, so a shared one would keep every parsed
    file alive for the life of the process (``rtp dev`` reloads on each edit) and let two
    threads loading at once mix their state.
    """
    loader = _DocLoader(text, rel)
    try:
        return loader.load_doc()
    except yaml.MarkedYAMLError as exc:
        # a syntax error, or a tag no safe constructor knows (`!!python/name:...`, `!foo`)
        mark = exc.problem_mark or exc.context_mark
        loc = Location(rel, mark.line + 1, mark.column + 1) if mark else Location(rel)
        problem = exc.problem or "invalid YAML"
        raise ProjectError(
            f"YAML syntax error: {problem}",
            code="RTP101",
            location=loc,
            hint="check indentation and quoting; SQL belongs in a block scalar (`sql: |`)",
        ) from None
    except yaml.YAMLError as exc:
        raise ProjectError(f"YAML error: {exc}", code="RTP101", location=Location(rel)) from None
    finally:
        loader.dispose()


class _DocLoader(yaml.SafeLoader):
    """A safe loader for one document that builds plain values and records, for each,
    where it sits in the file. Holds no state beyond the document it reads."""

    def __init__(self, text: str, rel: str) -> None:
        super().__init__(text)
        self.doc = Doc(rel, None)
        self.lines = text.splitlines()

    def load_doc(self) -> Doc:
        node = self.get_single_node()
        if node is not None:
            self.doc.data = self._build(node, ())
        return self.doc

    def _build(self, node: yaml.Node, path: Path_):
        doc = self.doc
        doc.marks[path] = (node.start_mark.line + 1, node.start_mark.column + 1)
        doc.spans[path] = (node.start_mark.index, node.end_mark.index)
        if isinstance(node, yaml.MappingNode):
            out: dict = {}
            for key_node, value_node in node.value:
                key = self.construct_object(key_node, deep=True)
                if not isinstance(key, str | int | float | bool) or key is None:
                    key = str(key)
                child = (*path, key)
                if key in out:
                    raise ProjectError(
                        f"key '{key}' appears twice in the same mapping",
                        code="RTP105",
                        location=Location(
                            doc.file,
                            key_node.start_mark.line + 1,
                            key_node.start_mark.column + 1,
                            len(str(key)),
                        ),
                        hint="remove one of them",
                    )
                doc.key_marks[child] = (
                    key_node.start_mark.line + 1,
                    key_node.start_mark.column + 1,
                )
                out[key] = self._build(value_node, child)
            return out
        if isinstance(node, yaml.SequenceNode):
            return [self._build(item, (*path, i)) for i, item in enumerate(node.value)]
        value = self.construct_object(node, deep=True)
        if isinstance(value, str):
            _record_text(node, path, doc, self.lines)
        return value


def _record_text(node: yaml.ScalarNode, path: Path_, doc: Doc, lines: list[str]) -> None:
    start = node.start_mark
    if node.style == "|":
        # Literal block: content begins on the next non-empty line, at its indentation.
        first = start.line + 1
        while first < len(lines) and not lines[first].strip():
            first += 1
        indent = len(lines[first]) - len(lines[first].lstrip(" ")) if first < len(lines) else 0
        doc.origins[path] = TextOrigin(doc.file, first + 1, indent + 1, True)
    else:
        quoted = 1 if node.style in ("'", '"') else 0
        doc.origins[path] = TextOrigin(doc.file, start.line + 1, start.column + 1 + quoted, False)
    doc.lengths[path] = max(
        1,
        min(len(node.value), node.end_mark.column - start.column)
        if node.end_mark.line == start.line
        else len(node.value.split("\n")[0]),
    )
