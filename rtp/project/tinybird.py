"""Read Tinybird datafiles (``.datasource``, ``.pipe``) into the same raw form as YAML.

Each datafile becomes a :class:`~rtp.project.source.Doc` holding the data the YAML
readers expect (``columns``, ``engine``, ``nodes`` ...) with the line of every part
recorded, so the same validation and error locations apply to both formats.
"""

from __future__ import annotations

import re

from rtp.errors import Location, ProjectError
from rtp.project.source import Doc, TextOrigin

_DIRECTIVE = re.compile(r"^([A-Z_]+)(?:\s+(.*?))?\s*$")
_COLUMN = re.compile(
    r"^`?(?P<name>[A-Za-z_][A-Za-z0-9_]*)`?\s+(?P<rest>.+?)\s*,?\s*$")
_JSON = re.compile(r"`json:(?P<path>[^`]+)`")

_ENGINE_OPTIONS = {"ENGINE_VER": "ver", "ENGINE_IS_DELETED": "is_deleted",
                   "ENGINE_SIGN": "sign", "ENGINE_VERSION": "version",
                   "ENGINE_SUMMING_COLUMNS": "columns"}
_DS_KEYS = {"ENGINE_SORTING_KEY": "sorting_key", "ENGINE_PRIMARY_KEY": "primary_key",
            "ENGINE_PARTITION_KEY": "partition_key", "ENGINE_TTL": "ttl"}
_IGNORED = {"TOKEN", "VERSION", "FORWARD_QUERY", "SHARED_WITH", "TAGS", "KAFKA_CONNECTION_NAME"}


def _blocks(text: str, rel: str):
    """Yield (directive, inline value, block lines as (line_no, text), line_no)."""
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        raw = lines[i]
        if not raw.strip() or raw.lstrip().startswith("#"):
            i += 1
            continue
        if raw[:1].isspace():
            raise ProjectError("indented text outside a block", code="RTP101",
                               location=Location(rel, i + 1, 1),
                               hint="blocks start with a directive ending in '>'")
        m = _DIRECTIVE.match(raw)
        if not m:
            raise ProjectError(f"can't read '{raw.strip()[:40]}'", code="RTP101",
                               location=Location(rel, i + 1, 1))
        name, value = m.group(1), (m.group(2) or "").strip()
        start = i + 1
        block: list[tuple[int, str]] = []
        i += 1
        if value == ">":
            while i < len(lines) and (not lines[i].strip() or lines[i][:1].isspace()):
                block.append((i + 1, lines[i]))
                i += 1
            while block and not block[-1][1].strip():
                block.pop()
            value = ""
        yield name, _unquote(value), block, start


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        return value[1:-1]
    return value


def _split_top(text: str) -> list[str]:
    """Split on commas outside parentheses and quotes."""
    parts, depth, quote, cur = [], 0, "", ""
    for ch in text:
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append(cur.strip())
            cur = ""
            continue
        cur += ch
    if cur.strip():
        parts.append(cur.strip())
    return parts


def _unknown(doc: Doc, name: str, line: int) -> None:
    raise ProjectError(f"unknown directive '{name}'", code="RTP102",
                       location=Location(doc.file, line, 1, len(name)))


def parse_datasource(text: str, rel: str) -> Doc:
    """A ``.datasource`` file as a Doc. Raises ProjectError on unreadable structure."""
    doc = Doc(rel, {})
    data: dict = doc.data
    engine: dict = {}
    for name, value, block, line in _blocks(text, rel):
        if name == "DESCRIPTION":
            data["description"] = "\n".join(t.strip() for _, t in block) or value
        elif name == "SCHEMA":
            data["columns"] = []
            doc.marks[("columns",)] = (line, 1)
            for line_no, raw in block:
                body = raw.strip().rstrip(",").strip()
                if not body:
                    continue
                column = _column(body, doc, line_no, raw, len(data["columns"]))
                data["columns"].append(column)
        elif name == "ENGINE":
            engine["type"] = value
            doc.marks[("engine",)] = doc.marks[("engine", "type")] = (line, 8)
        elif name in _ENGINE_OPTIONS:
            key = _ENGINE_OPTIONS[name]
            engine[key] = _split_top(value) if key == "columns" else value
            doc.marks[("engine", key)] = doc.key_marks[("engine", key)] = (line, 1)
        elif name in _DS_KEYS:
            key = _DS_KEYS[name]
            data[key] = _split_top(value) if key in ("sorting_key", "primary_key") else value
            doc.marks[(key,)] = (line, len(name) + 2)
            for i in range(len(data[key]) if isinstance(data[key], list) else 0):
                doc.marks[(key, i)] = (line, len(name) + 2)
        elif name == "ENGINE_SETTINGS":
            settings = {}
            for item in _split_top(value):
                k, _, v = item.partition("=")
                v = _unquote(v.strip())
                settings[k.strip()] = int(v) if v.isdigit() else v
                doc.key_marks[("settings", k.strip())] = (line, 1)
            data["settings"] = settings
            doc.marks[("settings",)] = (line, 1)
        elif name == "INDEXES":
            data["indexes"] = []
            for line_no, raw in block:
                m = re.match(r"^\s*(\w+)\s+(.+?)\s+TYPE\s+(.+?)(?:\s+GRANULARITY\s+(\d+))?\s*,?$",
                             raw)
                if not m:
                    raise ProjectError("an index is `name expr TYPE type GRANULARITY n`",
                                       code="RTP104", location=Location(rel, line_no, 1))
                index = {"name": m.group(1), "expr": m.group(2), "type": m.group(3),
                         "granularity": int(m.group(4) or 1)}
                path = ("indexes", len(data["indexes"]))
                doc.marks[path] = (line_no, 1)
                data["indexes"].append(index)
        elif name not in _IGNORED:
            _unknown(doc, name, line)
    if engine:
        data["engine"] = engine
    return doc


def _column(body: str, doc: Doc, line_no: int, raw: str, index: int) -> dict:
    json_path = None
    jm = _JSON.search(body)
    if jm:
        json_path = jm.group("path")
        body = (body[: jm.start()] + body[jm.end():]).strip()
    m = _COLUMN.match(body)
    if not m:
        raise ProjectError(f"can't read column definition '{body[:40]}'", code="RTP104",
                           location=Location(doc.file, line_no, 1))
    rest = m.group("rest")
    default = None
    dm = re.search(r"\s+DEFAULT\s+(.+)$", rest)
    if dm:
        default, rest = dm.group(1), rest[: dm.start()]
    column = {"name": m.group("name"), "type": rest.strip()}
    if json_path:
        column["json"] = json_path
    if default:
        column["default"] = default
    path = ("columns", index)
    indent = len(raw) - len(raw.lstrip())
    doc.marks[path] = doc.marks[(*path, "name")] = (line_no, indent + 1)
    type_col = raw.find(column["type"]) + 1 if column["type"] in raw else indent + 1
    doc.marks[(*path, "type")] = (line_no, type_col)
    doc.lengths[(*path, "type")] = len(column["type"])
    return column


def parse_pipe(text: str, rel: str) -> Doc:
    """A ``.pipe`` file as a Doc. Raises ProjectError on unreadable structure."""
    doc = Doc(rel, {})
    data: dict = doc.data
    nodes: list[dict] = []
    for name, value, block, line in _blocks(text, rel):
        node = nodes[-1] if nodes else None
        if name == "NODE":
            nodes.append({"name": value})
            path = ("nodes", len(nodes) - 1)
            doc.marks[path] = doc.marks[(*path, "name")] = (line, 6)
        elif name == "DESCRIPTION":
            description = "\n".join(t.strip() for _, t in block) or value
            if node is None:
                data["description"] = description
            else:
                node["description"] = description
        elif name == "SQL":
            if node is None:
                raise ProjectError("SQL before any NODE", code="RTP104",
                                   location=Location(rel, line, 1))
            indent = min((len(t) - len(t.lstrip()) for _, t in block if t.strip()), default=0)
            node["sql"] = "\n".join(t[indent:] for _, t in block)
            path = ("nodes", len(nodes) - 1, "sql")
            first = block[0][0] if block else line
            doc.marks[path] = (first, indent + 1)
            doc.origins[path] = TextOrigin(rel, first, indent + 1, True)
        elif name == "TYPE":
            data["type"] = value.lower()
            doc.marks[("type",)] = (line, 6)
        elif name in ("DATASOURCE", "TARGET_DATASOURCE"):
            data["target"] = value
            doc.marks[("target",)] = doc.key_marks[("target",)] = (line, len(name) + 2)
        elif name == "COPY_SCHEDULE":
            data["schedule"] = value
            doc.marks[("schedule",)] = (line, len(name) + 2)
        elif name == "COPY_MODE":
            data["mode"] = value
            doc.marks[("mode",)] = (line, len(name) + 2)
        elif name not in _IGNORED:
            _unknown(doc, name, line)
    data["nodes"] = nodes
    doc.marks[("nodes",)] = (1, 1)
    return doc
