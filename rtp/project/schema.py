"""What each project file may hold: pydantic models of ``rtp.yaml``, ``datasources/*.yaml``
and ``pipes/*.yaml``.

One description serves two readers: :mod:`rtp.project.load` validates every raw
document against it (then turns each pydantic error into an rtp problem at the file's
line and column), and ``rtp schema`` publishes it as JSON Schema for editors.

Values follow rtp's reading of YAML, not pydantic's defaults: text fields also take
numbers (``default: 0``), an empty value (``ttl:``) means "not set", and a single
expression stands for a list of one (``sorting_key: user_id``). Checks that need more
than one field or the rest of the project (engine options per engine, target URLs,
static folders, names used twice) stay as code in :mod:`rtp.project.load`.

Every rejection is a ``PydanticCustomError`` whose type names the rtp rule (``rtp_text``
...) so :func:`rtp.project.load` words it the way rtp always has.
"""

from __future__ import annotations

import difflib
import json
import re
from typing import Annotated, Any, ClassVar

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, WithJsonSchema
from pydantic_core import PydanticCustomError

from rtp.project import units
from rtp.project.model import (
    COPY_MODES,
    ENGINES,
    KAFKA_OFFSET_RESETS,
    PIPE_TYPES,
    REQUIRED_ENGINE_OPTIONS,
)

NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
NAME_HINT = "use letters, digits and underscores, starting with a letter or underscore"
# a column may have dots inside its name, as ClickHouse's flattened Nested columns do and
# Tinybird accepts (`p.id`, from a view's `SELECT p.id`); rtp always back-quotes it
COLUMN_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_0-9]+)*$")


def kind_of(value) -> str:
    """How a value reads to a person: 'a mapping', 'text', 'empty'..."""
    return {
        dict: "a mapping",
        list: "a list",
        str: "text",
        bool: "true/false",
        int: "a number",
        float: "a number",
        type(None): "empty",
    }.get(type(value), "a value")


# -- value types --------------------------------------------------------------------------


def _text(value):
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    raise PydanticCustomError("rtp_text", "must be text", {"kind": kind_of(value)})


def _name(value, pattern: re.Pattern = NAME_RE):
    value = _text(value)
    if value is not None and not pattern.match(value):
        raise PydanticCustomError("rtp_name", "is not a valid name", {"name": value})
    return value


def _column_name(value):
    return _name(value, COLUMN_NAME_RE)


def _exprs(value):
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if not isinstance(value, list):
        raise PydanticCustomError(
            "rtp_exprs", "must be a list of expressions", {"kind": kind_of(value)}
        )
    return value


def _flag(value):
    if not isinstance(value, bool):
        raise PydanticCustomError("rtp_flag", "must be true or false", {})
    return value


def _granularity(value):
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise PydanticCustomError("rtp_granularity", "must be a positive whole number", {})
    return value


def _choice(values: tuple[str, ...], message: str, suggest: bool):
    def check(value):
        value = _text(value) or None  # empty means "the default", as it always has
        if value is not None and value not in values:
            close = difflib.get_close_matches(value, values, n=1) if suggest else []
            hint = (
                ((f"did you mean '{close[0]}'? " if close else "") + f"one of: {', '.join(values)}")
                if suggest
                else None
            )
            raise PydanticCustomError("rtp_choice", message.format(value=value), {"hint": hint})
        return value

    return check


def _mapping_or_empty(value):
    """``targets:`` written empty, ``[]`` or ``''`` reads as no extra targets."""
    return value if value else {}


def _engine(value):
    if isinstance(value, str):
        return {"type": value}
    if value is not None and not isinstance(value, dict):
        raise PydanticCustomError("rtp_mapping", "must be a mapping", {"kind": kind_of(value)})
    return value


_TEXT_SCHEMA = {"type": ["string", "number", "null"]}
Text = Annotated[str | None, BeforeValidator(_text), WithJsonSchema(_TEXT_SCHEMA)]
RequiredText = Annotated[
    str | None, BeforeValidator(_text), WithJsonSchema({"type": ["string", "number"]})
]
Name = Annotated[
    str | None,
    BeforeValidator(_name),
    WithJsonSchema({"type": "string", "pattern": NAME_RE.pattern}),
]
ColumnName = Annotated[
    str | None,
    BeforeValidator(_column_name),
    WithJsonSchema({"type": "string", "pattern": COLUMN_NAME_RE.pattern}),
]
Exprs = Annotated[
    list[Text],
    BeforeValidator(_exprs),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "string"},
                {"type": "array", "items": {"type": ["string", "number"]}},
                {"type": "null"},
            ]
        }
    ),
]
Flag = Annotated[bool, BeforeValidator(_flag)]
Granularity = Annotated[
    int, BeforeValidator(_granularity), WithJsonSchema({"type": "integer", "minimum": 1})
]
PipeType = Annotated[
    str | None,
    BeforeValidator(_choice(PIPE_TYPES, "unknown pipe type '{value}'", True)),
    WithJsonSchema({"enum": list(PIPE_TYPES), "default": "endpoint"}),
]
CopyMode = Annotated[
    str | None,
    BeforeValidator(
        _choice(COPY_MODES, f"copy mode must be one of {', '.join(COPY_MODES)}", False)
    ),
    WithJsonSchema({"enum": list(COPY_MODES), "default": "append"}),
]


def _engine_schema() -> dict:
    """``engine: MergeTree`` or ``engine: {type: ..., <that engine's options>}``; built from
    :data:`rtp.project.model.ENGINES` so the schema knows each engine's options."""
    forms: list[dict] = [{"enum": list(ENGINES), "description": "an engine without options"}]
    for name, options in ENGINES.items():
        props: dict = {"type": {"const": name}}
        for option in options:
            props[option] = (
                {"anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]}
                if option == "columns"
                else {"type": ["string", "number"]}
            )
        forms.append(
            {
                "type": "object",
                "properties": props,
                "additionalProperties": False,
                "required": ["type", *REQUIRED_ENGINE_OPTIONS.get(name, ())],
            }
        )
    return {"anyOf": forms}


# -- files --------------------------------------------------------------------------------


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    what: ClassVar[str]  # how messages name one of these: "unknown key 'x' in column"
    mapping_what: ClassVar[str]  # "a column must be a mapping ..."


class EngineSpec(BaseModel):
    """The type; its options are checked per engine by the loader."""

    model_config = ConfigDict(extra="allow", frozen=True)
    what: ClassVar[str] = "engine"
    mapping_what: ClassVar[str] = "engine"
    type: Text = Field(None, title="engine type")


Engine = Annotated[EngineSpec | None, BeforeValidator(_engine), WithJsonSchema(_engine_schema())]


class ColumnFile(_Model):
    what: ClassVar[str] = "column"
    mapping_what: ClassVar[str] = "a column"
    name: ColumnName = Field(title="column name")
    type: RequiredText = Field(title="column type", description="a ClickHouse type")
    json_: Text = Field(
        None,
        alias="json",
        title="json path",
        description="where the value sits in an ingested JSON row, e.g. $.user.id",
    )
    default: Text = Field(None, title="default", description="DEFAULT expression")
    codec: Text = Field(None, title="codec", description="CODEC(...) arguments")
    comment: Text = Field(None, title="comment")


class IndexFile(_Model):
    what: ClassVar[str] = "index"
    mapping_what: ClassVar[str] = "a index"
    name: Name = Field(title="index name")
    expr: RequiredText = Field(title="index expr")
    type: RequiredText = Field(title="index type", description="e.g. bloom_filter, minmax")
    granularity: Granularity = Field(1, title="index granularity")


OffsetReset = Annotated[
    str | None,
    BeforeValidator(
        _choice(KAFKA_OFFSET_RESETS, "auto_offset_reset must be earliest or latest", False)
    ),
    WithJsonSchema({"enum": list(KAFKA_OFFSET_RESETS), "default": "latest"}),
]
SECURITY_PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
SASL_MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "OAUTHBEARER")
CONNECTION_TYPES = ("kafka",)


def _upper_choice(values: tuple[str, ...], message: str):
    check = _choice(values, message, True)
    return lambda value: check(value.upper() if isinstance(value, str) else value)


def _raw_flag(value):
    """``store_raw_value: true`` or Tinybird's ``KAFKA_STORE_RAW_VALUE True``."""
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    return _flag(value)


class KafkaFile(_Model):
    """The ``kafka:`` key of a datasource: the topic that feeds it."""

    what: ClassVar[str] = "kafka"
    mapping_what: ClassVar[str] = "kafka"
    connection: Name = Field(title="kafka connection", description="connections/<name>.yaml")
    topic: RequiredText = Field(title="kafka topic")
    group_id: Text = Field(
        None, title="kafka group_id", description="consumer group; default rtp_<project>_<ds>"
    )
    auto_offset_reset: OffsetReset = Field(None, title="kafka auto_offset_reset")
    store_raw_value: Annotated[bool, BeforeValidator(_raw_flag)] = Field(
        False, title="kafka store_raw_value", description="the message text in `__value`"
    )


class ConnectionFile(_Model):
    """``connections/<name>.yaml``: a Kafka cluster (Tinybird's ``.connection`` file)."""

    model_config = ConfigDict(title="rtp connection")
    what: ClassVar[str] = "connection"
    mapping_what: ClassVar[str] = "a connection file"
    type: Annotated[
        str | None,
        BeforeValidator(
            _choice(
                CONNECTION_TYPES,
                "connection type '{value}' is not supported by rtp (only kafka)",
                False,
            )
        ),
        WithJsonSchema({"enum": list(CONNECTION_TYPES)}),
    ] = Field(title="type")
    bootstrap_servers: Text = Field(
        None, title="bootstrap_servers", description="host:port[,host:port]; empty: inactive"
    )
    security_protocol: Annotated[
        str | None,
        BeforeValidator(_upper_choice(SECURITY_PROTOCOLS, "unknown security protocol '{value}'")),
        WithJsonSchema({"enum": list(SECURITY_PROTOCOLS), "default": "PLAINTEXT"}),
    ] = Field(None, title="security_protocol")
    sasl_mechanism: Annotated[
        str | None,
        BeforeValidator(_upper_choice(SASL_MECHANISMS, "unknown SASL mechanism '{value}'")),
        WithJsonSchema({"enum": list(SASL_MECHANISMS)}),
    ] = Field(None, title="sasl_mechanism")
    key: Text = Field(None, title="key", description="SASL user name")
    secret: Text = Field(None, title="secret", description="SASL password")
    schema_registry_url: Text = Field(None, title="schema_registry_url")


class DatasourceFile(_Model):
    """``datasources/<name>.yaml``: one table."""

    model_config = ConfigDict(title="rtp datasource")
    what: ClassVar[str] = "datasource"
    mapping_what: ClassVar[str] = "a datasource file"
    description: Text = Field(None, title="description")
    columns: list[ColumnFile] | None = Field(title="columns", json_schema_extra={"minItems": 1})
    engine: Engine = Field(None, title="engine")
    sorting_key: Exprs = Field(default_factory=list, title="sorting_key")
    primary_key: Exprs = Field(default_factory=list, title="primary_key")
    partition_key: Text = Field(None, title="partition_key")
    ttl: Text = Field(None, title="ttl")
    settings: dict[Any, Any] | None = Field(
        None, title="settings", description="MergeTree table settings"
    )
    indexes: list[IndexFile] | None = Field(None, title="indexes")
    kafka: KafkaFile | None = Field(None, title="kafka", description="fed from a Kafka topic")
    forward_query: Text = Field(
        None,
        title="forward_query",
        description="how `rtp deploy --stage` fills a changed datasource's new table from "
        "the live one: a SELECT list over the live table (Tinybird's FORWARD_QUERY)",
    )
    shard_key: Text = Field(
        None,
        title="shard_key",
        description="on a cluster target: the Distributed table's sharding key (default rand())",
    )


def _number_or_text(minimum: float, pattern: str, exclusive: bool = False) -> dict:
    bound = {"exclusiveMinimum" if exclusive else "minimum": minimum}
    return {"anyOf": [{"type": "number", **bound}, {"type": "string", "pattern": pattern}]}


_SECONDS_TEXT = r"^\s*\d+(\.\d+)?\s*(ms|s|m|h)?\s*$"


def _ttl(value):
    try:
        return units.seconds(value, exclusive=True)
    except (PydanticCustomError, ValueError, TypeError):
        raise PydanticCustomError(
            "rtp_ttl", "must be seconds > 0 (e.g. 30, 500ms, 5m)", {}
        ) from None


Ttl = Annotated[
    float,
    BeforeValidator(_ttl),
    WithJsonSchema(_number_or_text(0, _SECONDS_TEXT, exclusive=True)),
]


class CacheFile(_Model):
    """``cache:`` of an endpoint pipe or of a node: how long a result is reused."""

    what: ClassVar[str] = "cache"
    mapping_what: ClassVar[str] = "cache"
    ttl: Ttl = Field(
        title="cache ttl",
        description="seconds a result is reused (e.g. 30, 500ms, 5m); a deploy drops it",
    )


class NodeFile(_Model):
    what: ClassVar[str] = "node"
    mapping_what: ClassVar[str] = "a node"
    name: Name = Field(title="node name")
    sql: RequiredText = Field(title="sql", description="a SELECT; Jinja2 template")
    description: Text = Field(None, title="description")
    cache: CacheFile | None = Field(
        None,
        title="node cache",
        description="reuse this node's result for every caller for ttl seconds; "
        "only for a node that reads no request parameter",
    )


class PipeFile(_Model):
    """``pipes/<name>.yaml``: nodes of SQL; the last one is the pipe's result."""

    model_config = ConfigDict(title="rtp pipe")
    what: ClassVar[str] = "pipe"
    mapping_what: ClassVar[str] = "a pipe file"
    description: Text = Field(None, title="description")
    nodes: list[NodeFile] | None = Field(title="nodes", json_schema_extra={"minItems": 1})
    type: PipeType = Field(None, title="type")
    target: Name = Field(
        None, title="target", description="the datasource a materialized or copy pipe writes"
    )
    schedule: Text = Field(None, title="schedule", description="copy pipes: cron or @hourly")
    mode: CopyMode = Field(None, title="mode", description="copy pipes: append or replace")
    populate: Flag = Field(False, title="populate")
    cache: CacheFile | None = Field(
        None,
        title="cache",
        description="endpoints: reuse the answer to each distinct parameter set for ttl seconds",
    )


def _setting(parse, schema: dict, **bounds):
    """A server setting read by one of :mod:`rtp.project.units`' functions."""

    def check(value):
        return None if value is None else parse(value, **bounds)

    return Annotated[Any, BeforeValidator(check), WithJsonSchema(schema)]


_SIZE_TEXT = r"^\s*\d+(\.\d+)?\s*([KMGT]i?B|B)?\s*$"
Seconds = _setting(units.seconds, _number_or_text(0, _SECONDS_TEXT))
PositiveSeconds = _setting(units.seconds, _number_or_text(0, _SECONDS_TEXT, True), exclusive=True)
Size = _setting(units.size, _number_or_text(0, _SIZE_TEXT))
PositiveSize = _setting(units.size, _number_or_text(1, _SIZE_TEXT), minimum=1)
Count = _setting(units.count, {"type": "integer", "minimum": 0})
PositiveCount = _setting(units.count, {"type": "integer", "minimum": 1}, minimum=1)
Rate = _setting(units.rate, {"type": "number", "minimum": 0})
Switch = _setting(units.switch, {"type": "boolean"})
Origins = _setting(
    units.origins, {"anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]}
)
SettingText = _setting(units.text, {"type": "string"})


SERVER_DOC = "docs/serve.md#settings"


class ServerSection(_Model):
    """``server:`` in ``rtp.yaml``: how ``rtp serve`` and ``rtp dev`` serve the project.
    Names are :class:`rtp.server.settings.ServerSettings`' fields; durations in seconds
    (or ``500ms``, ``2m``), sizes in bytes (or ``10MiB``, ``2GB``); 0 = unlimited where a
    limit allows it. ``RTP_SERVER_<NAME>`` and ``rtp serve`` flags override them."""

    what: ClassVar[str] = "server"
    mapping_what: ClassVar[str] = "server"
    query_timeout: PositiveSeconds = Field(
        None,
        title="query_timeout",
        description="seconds from a request's arrival to its answer; past it 408",
    )
    max_memory_usage: Size = Field(
        None, title="max_memory_usage", description="memory one caller's query may use"
    )
    max_rows_to_read: Count = Field(
        None, title="max_rows_to_read", description="rows one caller's query may read"
    )
    max_bytes_to_read: Size = Field(
        None, title="max_bytes_to_read", description="bytes one caller's query may read"
    )
    max_result_rows: Count = Field(
        None, title="max_result_rows", description="rows one caller's answer may hold"
    )
    max_result_bytes: Size = Field(
        None, title="max_result_bytes", description="bytes one caller's answer may hold"
    )
    admin_max_memory_usage: Size = Field(
        None,
        title="admin_max_memory_usage",
        description="memory an ADMIN token's query may use (default 4 x max_memory_usage)",
    )
    sql_max_threads: PositiveCount = Field(
        None, title="sql_max_threads", description="threads one /v0/sql query may use"
    )
    ready_exclusive_max: Seconds = Field(
        None,
        title="ready_exclusive_max",
        description="/readyz answers 503 once a deploy holds the engine this long",
    )
    max_body_bytes: PositiveSize = Field(
        None,
        title="max_body_bytes",
        description="largest request body, compressed and expanded; larger answers 413",
    )
    batch_wait: Seconds = Field(
        None,
        title="batch_wait",
        description="seconds an ingest flush waits for more requests to join it",
    )
    batch_max_rows: PositiveCount = Field(
        None,
        title="batch_max_rows",
        description="an ingest batch is flushed early at this many rows",
    )
    max_pending_rows: PositiveCount = Field(
        None, title="max_pending_rows", description="queued ingest rows beyond this answer 429"
    )
    rate_limit: Rate = Field(
        None,
        title="rate_limit",
        description="requests per second per token (bursts of 2 s worth); 0 = unlimited",
    )
    cors_origins: Origins = Field(
        None, title="cors_origins", description="browser origins allowed; [] = none, '*' = any"
    )
    threads: PositiveCount = Field(
        None, title="threads", description="threads running blocking engine calls, per process"
    )
    workers: PositiveCount = Field(
        None,
        title="workers",
        description="server processes sharing the port (server targets only; "
        "the embedded target is served by one)",
    )
    copy_timeout: PositiveSeconds = Field(
        None, title="copy_timeout", description="the engine's deadline for each scheduled copy run"
    )
    schedules: Switch = Field(
        None,
        title="schedules",
        description="whether this process runs scheduled copy "
        "pipes (on in exactly one of several servers on one target)",
    )
    docs_url: SettingText = Field(
        None, title="docs_url", description="errors link to <docs_url>#<code>"
    )

    def values(self) -> dict:
        """The settings written, by name."""
        return {
            name: getattr(self, name)
            for name in type(self).model_fields
            if getattr(self, name) is not None
        }


class DeploySection(_Model):
    """``deploy:`` in ``rtp.yaml``: the version lifecycle (docs/deploy.md, "Versions")."""

    what: ClassVar[str] = "deploy"
    mapping_what: ClassVar[str] = "deploy"
    keep: int | None = Field(
        None,
        ge=1,
        le=2,
        title="keep",
        description="versions kept by `rtp deploy promote`: 2 (live and the previous one, "
        "for `rtp deploy rollback`) or 1 (live only)",
    )


class TargetFile(_Model):
    """A target written as a mapping: a server URL, and the cluster its tables span."""

    what: ClassVar[str] = "target"
    mapping_what: ClassVar[str] = "a target"
    url: RequiredText = Field(title="url", description="clickhouse://user:password@host:9000/db")
    cluster: Text = Field(
        None, title="cluster", description="deploy ON CLUSTER: a cluster of system.clusters"
    )
    zookeeper_path: Text = Field(
        None,
        title="zookeeper_path",
        description="Replicated tables' ZooKeeper path; default "
        "/clickhouse/tables/{shard}/{database}/{table}",
    )
    replica: Text = Field(
        None, title="replica", description="Replicated tables' replica name; default {replica}"
    )


def _target(value):
    """A target is a URL (text) or a mapping (:class:`TargetFile`)."""
    if isinstance(value, dict):
        return TargetFile.model_validate(value)
    return _text(value)


class ProjectFile(_Model):
    """``rtp.yaml``: the project's name, targets and server settings."""

    model_config = ConfigDict(title="rtp project")
    what: ClassVar[str] = "rtp.yaml"
    mapping_what: ClassVar[str] = "rtp.yaml"
    name: Name = Field(title="project name")
    description: Text = Field(None, title="description")
    targets: Annotated[
        dict[
            Any,
            Annotated[
                Any,
                BeforeValidator(_target),
                WithJsonSchema({"anyOf": [_TEXT_SCHEMA, TargetFile.model_json_schema()]}),
            ],
        ]
        | None,
        BeforeValidator(_mapping_or_empty),
    ] = Field(
        None,
        title="targets",
        description="name -> 'embedded', clickhouse://user:password@host:9000/database, "
        "or {url, cluster}",
    )
    default_target: Text = Field(None, title="default_target")
    tests_dir: Text = Field(None, title="tests_dir")
    fixtures_dir: Text = Field(None, title="fixtures_dir")
    static: dict[Any, Text] | None = Field(
        None, title="static", description="URL name -> folder served by rtp serve and rtp dev"
    )
    server: ServerSection | None = Field(
        None, title="server", description="settings of rtp serve and rtp dev"
    )
    deploy: DeploySection | None = Field(
        None, title="deploy", description="versions: `rtp deploy --stage`, promote, rollback"
    )


FILES: dict[str, type[_Model]] = {
    "project": ProjectFile,
    "datasource": DatasourceFile,
    "pipe": PipeFile,
}
# the value of a mapping field, in messages: "target 'prod' must be text"
ITEM_WHAT = {"targets": "target '{key}'", "static": "static folder '{key}'"}


def json_schema(kind: str) -> dict:
    """The published JSON Schema of one kind of file (``project``, ``datasource``,
    ``pipe``). Raises KeyError for another kind."""
    schema = _drop_null_defaults(FILES[kind].model_json_schema(by_alias=True))
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", **schema}


def _drop_null_defaults(value):
    """``default: null`` says nothing to an editor (and hides ``type``'s real default)."""
    if isinstance(value, dict):
        return {
            k: _drop_null_defaults(v)
            for k, v in value.items()
            if not (k == "default" and v is None)
        }
    if isinstance(value, list):
        return [_drop_null_defaults(v) for v in value]
    return value


def json_schema_text(kind: str) -> str:
    return json.dumps(json_schema(kind), indent=2, sort_keys=False) + "\n"
