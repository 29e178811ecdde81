"""Read Tinybird datafiles (``.datasource``, ``.pipe``) into the same raw form as YAML.

Each datafile becomes a :class:`~rtp.project.source.Doc` holding the data the YAML
readers expect (``columns``, ``engine``, ``nodes`` ...) with the line of every part
recorded, so the same validation and error locations apply to both formats.

The syntax follows Tinybird's CLI parser: a directive is a known keyword (any case) as the
first word of a line; ``KEYWORD >`` opens a block that runs until the next line that starts
at column 0 with a known keyword, so SQL or descriptions may have text at column 0 (the
``%`` template marker, an unindented statement). ``INCLUDE "file.incl" [VAR=value ...]``
is replaced by the file's lines with ``$VAR`` substituted. docs/tinybird.md lists every
keyword and what rtp does with it.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field
from pathlib import Path
from string import Template

from rtp.errors import Location, ProjectError
from rtp.project.source import Doc, TextOrigin

_COLUMN = re.compile(r"^`?(?P<name>[A-Za-z_][A-Za-z0-9_.]*)`?\s+(?P<rest>.+?)\s*,?\s*$")
_JSON = re.compile(r"`json:(?P<path>[^`]+)`")

_ENGINE_OPTIONS = {
    "ENGINE_VER": "ver",
    "ENGINE_IS_DELETED": "is_deleted",
    "ENGINE_SIGN": "sign",
    "ENGINE_VERSION": "version",
    "ENGINE_SUMMING_COLUMNS": "columns",
}
_DS_KEYS = {
    "ENGINE_SORTING_KEY": "sorting_key",
    "ENGINE_PRIMARY_KEY": "primary_key",
    "ENGINE_PARTITION_KEY": "partition_key",
    "ENGINE_TTL": "ttl",
}
# read and ignored: no effect on what rtp builds (VERSION is deprecated in Tinybird's CLI
# too; TAGS and SHARED_WITH are Tinybird UI and workspace features)
_IGNORED = {
    "VERSION",
    "TAGS",
    "SHARED_WITH",
    "BACKFILL",
    "DEPLOYMENT_METHOD",
    "ON_DEMAND_COMPUTE",
    "SCOPE",
    "FILTER",
    "SOURCE",
}
# features rtp does not have: a warning naming the feature; the rest of the file loads
_UNSUPPORTED = {
    "KAFKA": "Kafka headers, key/value formats and target partitions",
    "IMPORT": "scheduled imports (S3, GCS, BigQuery, Snowflake, DynamoDB)",
    "EXPORT": "sinks and exports",
    "PG": "PostgreSQL table functions",
    "ENGINE_SAMPLING_KEY": "sampling keys",
}
DATASOURCE_KEYWORDS = {
    "DESCRIPTION",
    "TOKEN",
    "SOURCE",
    "SCHEMA",
    "INDEXES",
    "ENGINE",
    "INCLUDE",
    "VERSION",
    "TAGS",
    "SHARED_WITH",
    "FORWARD_QUERY",
    "BACKFILL",
    "ENGINE_SETTINGS",
    "ENGINE_SAMPLING_KEY",
    *_ENGINE_OPTIONS,
    *_DS_KEYS,
    "KAFKA_CONNECTION_NAME",
    "KAFKA_TOPIC",
    "KAFKA_GROUP_ID",
    "KAFKA_AUTO_OFFSET_RESET",
    "KAFKA_STORE_RAW_VALUE",
    "KAFKA_STORE_HEADERS",
    "KAFKA_STORE_BINARY_HEADERS",
    "KAFKA_KEY_FORMAT",
    "KAFKA_VALUE_FORMAT",
    "KAFKA_TARGET_PARTITIONS",
    "KAFKA_KEY_AVRO_DESERIALIZATION",  # Classic's CLI took it in a datasource too
    "IMPORT_CONNECTION_NAME",
    "IMPORT_SCHEDULE",
    "IMPORT_STRATEGY",
    "IMPORT_BUCKET_URI",
    "IMPORT_FORMAT",
    "IMPORT_FROM_TIMESTAMP",
    "IMPORT_SERVICE",
    "IMPORT_EXTERNAL_DATASOURCE",
    "IMPORT_QUERY",
    "IMPORT_TABLE_ARN",
    "IMPORT_EXPORT_BUCKET",
    "PG_CONNECTION_NAME",
    "PG_TABLE",
    "EXPORT_SERVICE",
}
PIPE_KEYWORDS = {
    "NODE",
    "SCOPE",
    "DESCRIPTION",
    "TYPE",
    "DATASOURCE",
    "TAGS",
    "TARGET_DATASOURCE",
    "COPY_SCHEDULE",
    "COPY_MODE",
    "MODE",
    "ON_DEMAND_COMPUTE",
    "FILTER",
    "TOKEN",
    "INCLUDE",
    "SQL",
    "VERSION",
    "DEPLOYMENT_METHOD",
    "EXPORT_SERVICE",
    "EXPORT_CONNECTION_NAME",
    "EXPORT_SCHEDULE",
    "EXPORT_BUCKET_URI",
    "EXPORT_FILE_TEMPLATE",
    "EXPORT_FORMAT",
    "EXPORT_STRATEGY",
    "EXPORT_COMPRESSION",
    "EXPORT_WRITE_STRATEGY",
    "EXPORT_KAFKA_TOPIC",
    # Classic materialized pipes could declare their target's engine
    "ENGINE",
    *_ENGINE_OPTIONS,
    *_DS_KEYS,
    "ENGINE_SETTINGS",
}
TOKEN_SCOPES = {"READ", "APPEND"}
# datasource settings of a Kafka-fed datasource -> the `kafka:` key of rtp's YAML
_KAFKA_KEYS = {
    "KAFKA_CONNECTION_NAME": "connection",
    "KAFKA_TOPIC": "topic",
    "KAFKA_GROUP_ID": "group_id",
    "KAFKA_AUTO_OFFSET_RESET": "auto_offset_reset",
    "KAFKA_STORE_RAW_VALUE": "store_raw_value",
}
# the columns Tinybird adds to a Kafka datasource whose SCHEMA does not list them (its CLI's
# `tb datasource create --kafka` writes these types); filled from the message, not its JSON
KAFKA_META_TYPES = {
    "__topic": "LowCardinality(String)",
    "__partition": "Int16",
    "__offset": "Int64",
    "__timestamp": "DateTime",
    "__key": "String",
    "__value": "String",
}
# .connection settings -> the keys of rtp's connections/<name>.yaml
_CONNECTION_KEYS = {
    "TYPE": "type",
    "KAFKA_BOOTSTRAP_SERVERS": "bootstrap_servers",
    "KAFKA_SECURITY_PROTOCOL": "security_protocol",
    "KAFKA_SASL_MECHANISM": "sasl_mechanism",
    "KAFKA_KEY": "key",
    "KAFKA_SECRET": "secret",
    "KAFKA_SCHEMA_REGISTRY_URL": "schema_registry_url",
}


@dataclass
class Datafile:
    """A datafile read into a Doc, plus what only Tinybird files carry."""

    doc: Doc
    tokens: list[tuple[str, str]] = field(default_factory=list)  # (token name, scope)
    warnings: list[ProjectError] = field(default_factory=list)
    includes: list[str] = field(default_factory=list)  # .incl files read, relative


@dataclass
class _Line:
    file: str
    no: int
    text: str


def _lines(
    text: str, rel: str, path: Path | None, root: Path | None, out: Datafile, depth: int = 0
) -> list[_Line]:
    """The file's lines with INCLUDE lines replaced by the included file's lines."""
    result = []
    for no, raw in enumerate(text.splitlines(), 1):
        words = raw.split()
        if not words or words[0].upper() != "INCLUDE" or raw[:1].isspace():
            result.append(_Line(rel, no, raw))
            continue
        loc = Location(rel, no, 1, len(raw))
        if len(words) < 2 or path is None or root is None:
            raise ProjectError(
                "INCLUDE needs a file name",
                code="RTP104",
                location=loc,
                hint='INCLUDE "includes/common.incl"',
            )
        name = _unquote(words[1])
        variables = {}
        for item in words[2:]:
            key, eq, value = _unquote(item).partition("=")
            if not eq:
                raise ProjectError(
                    f"include variable '{item}' is not NAME=value", code="RTP104", location=loc
                )
            variables[key] = _unquote(value)
        found = next((p for p in (path.parent / name, root / name) if p.is_file()), None)
        if found is None:
            raise ProjectError(
                f"included file '{name}' does not exist",
                code="RTP107",
                location=loc,
                hint="the path is relative to this file",
            )
        if depth > 10:
            raise ProjectError("INCLUDE nests more than 10 files deep", code="RTP107", location=loc)
        try:
            inc_rel = found.resolve().relative_to(root.resolve()).as_posix()
        except ValueError:
            raise ProjectError(
                f"included file '{name}' is outside the project", code="RTP107", location=loc
            ) from None
        out.includes.append(inc_rel)
        body = Template(found.read_text(encoding="utf-8")).safe_substitute(variables)
        result.extend(_lines(body, inc_rel, found, root, out, depth + 1))
    return result


def _blocks(lines: list[_Line], rel: str, keywords: set[str]):
    """Yield (directive, inline value, block lines, line) where block lines are _Lines."""
    i = 0
    while i < len(lines):
        line = lines[i]
        raw = line.text
        stripped = raw.strip()
        if not stripped or stripped.startswith("#"):
            i += 1
            continue
        word, _, rest = stripped.partition(" ")
        name = word.upper()
        if name not in keywords:
            close = difflib.get_close_matches(name, sorted(keywords), n=1)
            if raw[:1].isspace():
                hint = "blocks start with a directive ending in '>'"
            else:
                hint = f"did you mean '{close[0]}'?" if close else None
            raise ProjectError(
                f"unknown directive '{word[:40]}'",
                code="RTP102",
                location=Location(line.file, line.no, 1, len(word)),
                hint=hint,
            )
        value = rest.strip()
        block: list[_Line] = []
        i += 1
        if value == ">":
            while i < len(lines):
                text = lines[i].text
                first = text.split(maxsplit=1)[0].upper() if text.strip() else ""
                if text.strip() and not text[:1].isspace() and first in keywords:
                    break
                block.append(lines[i])
                i += 1
            while block and not block[-1].text.strip():
                block.pop()
            while block and not block[0].text.strip():
                block.pop(0)
            value = ""
        yield name, _unquote(value), block, line


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


def _strip_comment(text: str) -> str:
    """``text`` without a trailing ``-- comment`` (outside quotes and backticks)."""
    quote = ""
    for i, ch in enumerate(text):
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "'\"`":
            quote = ch
        elif text.startswith("--", i):
            return text[:i].rstrip()
    return text


def _unsupported(out: Datafile, name: str, line: _Line) -> bool:
    feature = next(
        (f for k, f in _UNSUPPORTED.items() if name == k or name.startswith(k + "_")), None
    )
    if feature is None:
        return False
    out.warnings.append(
        ProjectError(
            f"{name}: {feature} are not supported by rtp; the directive is ignored",
            code="RTP107",
            location=Location(line.file, line.no, 1, len(name)),
            severity="warning",
            hint="feed the datasource through the Events API (POST /v0/events) or `rtp append`",
        )
    )
    return True


def _token(out: Datafile, value: str, line: _Line) -> None:
    parts = value.split()
    name = _unquote(parts[0]) if parts else ""
    scope = parts[1].upper() if len(parts) > 1 else "READ"
    if not name:
        raise ProjectError(
            "TOKEN is `TOKEN name READ` or `TOKEN name APPEND`",
            code="RTP104",
            location=Location(line.file, line.no, 1),
        )
    if scope not in TOKEN_SCOPES:
        out.warnings.append(
            ProjectError(
                f"token scope {scope} is not one rtp grants; the token is not created",
                code="RTP107",
                location=Location(line.file, line.no, 1),
                severity="warning",
                hint="scopes in datafiles: READ (pipes, datasources) and APPEND (datasources)",
            )
        )
        return
    out.tokens.append((name, scope))


def parse_datasource(
    text: str, rel: str, *, path: Path | None = None, root: Path | None = None
) -> Datafile:
    """A ``.datasource`` file. Raises ProjectError on unreadable structure."""
    out = Datafile(Doc(rel, {}))
    doc = out.doc
    data: dict = doc.data
    engine: dict = {}
    lines = _lines(text, rel, path, root, out)
    for name, value, block, line in _blocks(lines, rel, DATASOURCE_KEYWORDS):
        at = line.no
        if name == "DESCRIPTION":
            data["description"] = "\n".join(b.text.strip() for b in block) or value
        elif name == "SCHEMA":
            data["columns"] = []
            doc.marks[("columns",)] = (at, 1)
            for b in block:
                body = _strip_comment(b.text).strip().rstrip(",").strip()
                if not body or body.startswith("#"):
                    continue
                column = _column(body, doc, b, len(data["columns"]))
                data["columns"].append(column)
        elif name == "ENGINE":
            engine["type"] = value
            doc.marks[("engine",)] = doc.marks[("engine", "type")] = (at, 8)
        elif name in _ENGINE_OPTIONS:
            key = _ENGINE_OPTIONS[name]
            engine[key] = _split_top(value) if key == "columns" else value
            doc.marks[("engine", key)] = doc.key_marks[("engine", key)] = (at, 1)
        elif name in _DS_KEYS:
            key = _DS_KEYS[name]
            data[key] = _split_top(value) if key in ("sorting_key", "primary_key") else value
            doc.marks[(key,)] = (at, len(name) + 2)
            for i in range(len(data[key]) if isinstance(data[key], list) else 0):
                doc.marks[(key, i)] = (at, len(name) + 2)
        elif name == "ENGINE_SETTINGS":
            settings = {}
            for item in _split_top(value):
                k, _, v = item.partition("=")
                v = _unquote(v.strip())
                settings[k.strip()] = int(v) if v.isdigit() else v
                doc.key_marks[("settings", k.strip())] = (at, 1)
            data["settings"] = settings
            doc.marks[("settings",)] = (at, 1)
        elif name == "INDEXES":
            data["indexes"] = []
            for b in block:
                if not b.text.strip():
                    continue
                m = re.match(
                    r"^\s*(\w+)\s+(.+?)\s+TYPE\s+(.+?)(?:\s+GRANULARITY\s+(\d+))?\s*,?$",
                    _strip_comment(b.text),
                )
                if not m:
                    raise ProjectError(
                        "an index is `name expr TYPE type GRANULARITY n`",
                        code="RTP104",
                        location=Location(b.file, b.no, 1),
                    )
                index = {
                    "name": m.group(1),
                    "expr": m.group(2),
                    "type": m.group(3),
                    "granularity": int(m.group(4) or 1),
                }
                ipath = ("indexes", len(data["indexes"]))
                doc.marks[ipath] = (b.no, 1)
                data["indexes"].append(index)
        elif name == "TOKEN":
            _token(out, value, line)
        elif name == "FORWARD_QUERY":  # rtp deploy --stage fills the new table with it
            data["forward_query"] = "\n".join(b.text for b in block).strip() or value
            doc.marks[("forward_query",)] = (at, 1)
        elif name in _KAFKA_KEYS:
            key = _KAFKA_KEYS[name]
            if key == "store_raw_value" and value.lower() in ("true", "false"):
                value = value.lower() == "true"
            data.setdefault("kafka", {})[key] = value
            doc.marks.setdefault(("kafka",), (at, 1))
            doc.marks[("kafka", key)] = (at, len(name) + 2)
            doc.key_marks[("kafka", key)] = (at, 1)
        elif name not in _IGNORED and not _unsupported(out, name, line):
            raise ProjectError(
                f"unknown directive '{name}'",
                code="RTP102",
                location=Location(line.file, at, 1, len(name)),
            )
    if engine:
        data["engine"] = engine
    if "kafka" in data and isinstance(data.get("columns"), list):
        _add_kafka_meta_columns(doc)
    return out


def _add_kafka_meta_columns(doc: Doc) -> None:
    """Tinybird's Kafka meta columns the SCHEMA leaves out, after its columns (keys and
    pipes use them: `ENGINE_SORTING_KEY "__timestamp"`), marked at the Kafka settings."""
    columns = doc.data["columns"]
    listed = {c["name"] for c in columns}
    at = doc.marks[("kafka",)]
    for name, ctype in KAFKA_META_TYPES.items():
        if name in listed:
            continue
        cpath = ("columns", len(columns))
        columns.append({"name": name, "type": ctype, "json": f"$.{name}"})
        for key in (cpath, (*cpath, "name"), (*cpath, "type")):
            doc.marks[key] = at


def parse_connection(text: str, rel: str) -> Datafile:
    """A ``.connection`` file (``TYPE kafka`` and its ``KAFKA_*`` settings) read into the
    form of ``connections/<name>.yaml``. Settings of other connection types (S3, GCS ...)
    are kept under their own names; the loader says those types are not supported.
    Raises ProjectError on a line that is not ``SETTING value``."""
    out = Datafile(Doc(rel, {}))
    doc = out.doc
    for no, raw in enumerate(text.splitlines(), 1):
        stripped = raw.strip()
        if not stripped or stripped.startswith("#"):
            continue
        word, _, value = stripped.partition(" ")
        name = word.upper()
        if not re.fullmatch(r"[A-Z][A-Z0-9_]*", name):
            raise ProjectError(
                f"can't read '{stripped[:40]}': a connection setting is `NAME value`",
                code="RTP104",
                location=Location(rel, no, 1),
            )
        key = _CONNECTION_KEYS.get(name, name.lower())
        value = _unquote(value.strip())
        doc.data[key] = value.lower() if key == "type" else value
        doc.marks[(key,)] = (no, len(word) + 2)
        doc.key_marks[(key,)] = (no, 1)
    return out


def _json_path(path: str, ctype: str, line: _Line) -> str:
    """Tinybird's ``$.a[:]`` on an Array column reads the array itself; ``[:]`` anywhere
    else (``$.items[:].id``, one field of every element) rtp's ingest can't read."""
    if (
        path.endswith("[:]")
        and "[:]" not in path[:-3]
        and ctype.lstrip().startswith(("Array(", "Nullable(Array("))
    ):
        return path[:-3]
    if "[:]" in path:
        col = line.text.find(path) + 1 or 1
        raise ProjectError(
            f"JSON path '{path}' reads a field of every array element, which rtp's "
            "ingest does not support",
            code="RTP107",
            location=Location(line.file, line.no, col, len(path)),
            hint="read the whole array (`$.items[:]` into an Array column) and take the "
            "field in a materialized pipe with arrayMap",
        )
    return path


def _column(body: str, doc: Doc, line: _Line, index: int) -> dict:
    json_path = None
    jm = _JSON.search(body)
    if jm:
        json_path = jm.group("path")
        body = (body[: jm.start()] + body[jm.end() :]).strip()
    m = _COLUMN.match(body)
    if not m:
        raise ProjectError(
            f"can't read column definition '{body[:40]}'",
            code="RTP104",
            location=Location(line.file, line.no, 1),
        )
    rest = m.group("rest")
    default = None
    dm = re.search(r"\s+DEFAULT\s+(.+)$", rest)
    if dm:
        default, rest = dm.group(1).strip(), rest[: dm.start()]
    column = {"name": m.group("name"), "type": rest.strip()}
    if json_path:
        column["json"] = _json_path(json_path, column["type"], line)
    if default:
        column["default"] = default
    cpath = ("columns", index)
    raw = line.text
    indent = len(raw) - len(raw.lstrip())
    doc.marks[cpath] = doc.marks[(*cpath, "name")] = (line.no, indent + 1)
    type_col = raw.find(column["type"]) + 1 if column["type"] in raw else indent + 1
    doc.marks[(*cpath, "type")] = (line.no, type_col)
    doc.lengths[(*cpath, "type")] = len(column["type"])
    return column


def parse_pipe(
    text: str,
    rel: str,
    *,
    path: Path | None = None,
    root: Path | None = None,
    forward: bool = False,
) -> Datafile:
    """A ``.pipe`` file. A pipe without ``TYPE`` is an endpoint in a Classic project (what
    ``tb push`` published) and internal in a Forward one. Raises ProjectError on
    unreadable structure."""
    out = Datafile(Doc(rel, {}))
    doc = out.doc
    data: dict = doc.data
    nodes: list[dict] = []
    lines = _lines(text, rel, path, root, out)
    engine_line = None
    for name, value, block, line in _blocks(lines, rel, PIPE_KEYWORDS):
        at = line.no
        node = nodes[-1] if nodes else None
        if name == "NODE":
            nodes.append({"name": value})
            npath = ("nodes", len(nodes) - 1)
            doc.marks[npath] = doc.marks[(*npath, "name")] = (at, 6)
        elif name == "DESCRIPTION":
            description = "\n".join(b.text.strip() for b in block) or value
            if node is None:
                data["description"] = description
            else:
                node["description"] = description
        elif name == "SQL":
            if node is None:
                raise ProjectError(
                    "SQL before any NODE", code="RTP104", location=Location(line.file, at, 1)
                )
            texts = [b.text for b in block]
            indent = min((len(t) - len(t.lstrip()) for t in texts if t.strip()), default=0)
            node["sql"] = "\n".join(t[indent:] for t in texts)
            spath = ("nodes", len(nodes) - 1, "sql")
            first = block[0] if block else line
            doc.marks[spath] = (first.no, indent + 1)
            doc.origins[spath] = TextOrigin(first.file, first.no, indent + 1, True)
        elif name == "TYPE":
            ptype = value.lower()
            if ptype == "sink":
                out.warnings.append(
                    ProjectError(
                        "sink pipes are not supported by rtp; this pipe is kept as an internal "
                        "pipe",
                        code="RTP107",
                        location=Location(line.file, at, 6, len(value)),
                        severity="warning",
                    )
                )
                ptype = "internal"
            data["type"] = ptype
            doc.marks[("type",)] = (at, 6)
        elif name in ("DATASOURCE", "TARGET_DATASOURCE"):
            data["target"] = value
            doc.marks[("target",)] = doc.key_marks[("target",)] = (at, len(name) + 2)
        elif name == "COPY_SCHEDULE":
            if value.strip("@").lower() != "on-demand":
                data["schedule"] = value
                doc.marks[("schedule",)] = (at, len(name) + 2)
        elif name in ("COPY_MODE", "MODE"):
            data["mode"] = value.lower()
            doc.marks[("mode",)] = (at, len(name) + 2)
        elif name == "TOKEN":
            _token(out, value, line)
        elif name.startswith("ENGINE"):
            engine_line = engine_line or line
        elif name not in _IGNORED and not _unsupported(out, name, line):
            raise ProjectError(
                f"unknown directive '{name}'",
                code="RTP102",
                location=Location(line.file, at, 1, len(name)),
            )
    if "type" not in data:
        data["type"] = "internal" if forward else "endpoint"
    if engine_line is not None:
        out.warnings.append(
            ProjectError(
                "ENGINE lines in a pipe are ignored: rtp takes a materialized or copy pipe's "
                "target from the target's own .datasource file",
                code="RTP107",
                location=Location(engine_line.file, engine_line.no, 1),
                severity="warning",
                hint=f"declare the target in its own .datasource file "
                f"('{data.get('target', '<target>')}.datasource')",
            )
        )
    data["nodes"] = nodes
    doc.marks[("nodes",)] = (1, 1)
    return out
