"""The resolved project model: frozen, validated structure read from a project's files.

Every object keeps the :class:`~rtp.project.source.Doc` it came from, so any later stage
can point at the exact line of a column, a key or a node's SQL.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from rtp.errors import Location
from rtp.project.source import Doc, TextOrigin

PIPE_TYPES = ("endpoint", "materialized", "copy", "internal")
COPY_MODES = ("append", "replace")

# engine -> the options it takes, in the order ClickHouse's engine arguments expect them
ENGINES: dict[str, tuple[str, ...]] = {
    "MergeTree": (),
    "ReplacingMergeTree": ("ver", "is_deleted"),
    "SummingMergeTree": ("columns",),
    "AggregatingMergeTree": (),
    "CollapsingMergeTree": ("sign",),
    "VersionedCollapsingMergeTree": ("sign", "version"),
    "Null": (),
}
REQUIRED_ENGINE_OPTIONS: dict[str, tuple[str, ...]] = {
    "CollapsingMergeTree": ("sign",),
    "VersionedCollapsingMergeTree": ("sign", "version"),
}


@dataclass(frozen=True)
class Column:
    name: str
    type: str
    json_path: str
    default: str | None = None
    codec: str | None = None
    comment: str | None = None
    path: tuple = ()  # where the column sits in its datasource's Doc


@dataclass(frozen=True)
class Index:
    name: str
    expr: str
    type: str
    granularity: int = 1
    path: tuple = ()


@dataclass(frozen=True)
class Engine:
    type: str = "MergeTree"
    options: tuple[tuple[str, str], ...] = ()

    def option(self, name: str) -> str | None:
        return dict(self.options).get(name)


@dataclass(frozen=True)
class KafkaSource:
    """A datasource fed from a Kafka topic (Tinybird's ``KAFKA_*`` datasource settings)."""

    connection: str
    topic: str
    group_id: str | None = None  # None: "rtp_<project>_<datasource>"
    auto_offset_reset: str = "latest"  # where a group without committed offsets starts
    store_raw_value: bool = False  # the message's text in a `__value` column


KAFKA_OFFSET_RESETS = ("earliest", "latest")
# columns filled from the message, not from its JSON value (Tinybird's names)
KAFKA_META_COLUMNS = ("__topic", "__partition", "__offset", "__timestamp", "__key", "__value")


@dataclass(frozen=True)
class Connection:
    """An external stream source: ``connections/<name>.yaml`` or a Tinybird
    ``.connection`` file. Secrets (``{{ tb_secret("NAME", "default") }}``) are read from
    the environment when the project loads. ``bootstrap_servers`` empty means inactive:
    no consumer starts (the example project's connection without a broker)."""

    name: str
    file: str
    type: str = "kafka"
    bootstrap_servers: str = ""
    security_protocol: str = "PLAINTEXT"
    sasl_mechanism: str | None = None
    key: str | None = None
    secret: str | None = field(default=None, repr=False)
    schema_registry_url: str | None = None
    doc: Doc = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class Datasource:
    name: str
    file: str
    columns: tuple[Column, ...]
    engine: Engine = Engine()
    sorting_key: tuple[str, ...] = ()
    primary_key: tuple[str, ...] = ()
    partition_key: str | None = None
    ttl: str | None = None
    settings: tuple[tuple[str, object], ...] = ()
    indexes: tuple[Index, ...] = ()
    description: str = ""
    doc: Doc = field(default=None, compare=False, repr=False)
    # Tinybird `TOKEN name READ|APPEND` lines: (token name, scope), for deploy to create
    tokens: tuple[tuple[str, str], ...] = ()
    kafka: KafkaSource | None = None  # fed by a Kafka topic (rtp serve, rtp connect)
    # `rtp deploy --stage`: a SELECT list over the live table giving the new table's rows
    forward_query: str | None = field(default=None, compare=False)
    shard_key: str | None = None  # on a cluster: the Distributed table's key (None: rand())

    def column(self, name: str) -> Column | None:
        return next((c for c in self.columns if c.name == name), None)

    def loc(self, *path, key: bool = False) -> Location:
        return self.doc.loc(path, key=key)


@dataclass(frozen=True)
class Cache:
    """``cache: {ttl: <seconds>}`` on an endpoint pipe (its whole answer, per distinct
    parameter set) or on a node that reads no request parameter (its result, for every
    caller); reused for ``ttl`` seconds, dropped by a deploy or reload."""

    ttl: float  # seconds


@dataclass(frozen=True)
class Node:
    name: str
    sql: str
    description: str = ""
    origin: TextOrigin | None = None  # where the SQL text starts in the pipe's file
    path: tuple = ()
    cache: Cache | None = None


@dataclass(frozen=True)
class Pipe:
    name: str
    file: str
    nodes: tuple[Node, ...]
    type: str = "endpoint"
    target: str | None = None
    schedule: str | None = None
    mode: str = "append"
    populate: bool = False
    description: str = ""
    doc: Doc = field(default=None, compare=False, repr=False)
    # Tinybird `TOKEN name READ` lines: (token name, scope), for deploy to create
    tokens: tuple[tuple[str, str], ...] = ()
    cache: Cache | None = None  # endpoints: the whole answer per parameter set

    @property
    def output(self) -> Node:
        return self.nodes[-1]

    def node(self, name: str) -> Node | None:
        return next((n for n in self.nodes if n.name == name), None)

    def loc(self, *path, key: bool = False) -> Location:
        return self.doc.loc(path, key=key)


@dataclass(frozen=True)
class Target:
    name: str
    # "embedded" or clickhouse://user:password@host:port/database[?cluster=name]
    url: str


@dataclass(frozen=True)
class Settings:
    name: str
    description: str = ""
    targets: tuple[Target, ...] = (Target("embedded", "embedded"),)
    default_target: str = "embedded"
    tests_dir: str = "tests"
    fixtures_dir: str = "fixtures"
    # web pages served by `rtp serve`/`rtp dev`: (URL name, folder relative to the root);
    # ("storefront", "examples/storefront") is served at /storefront/
    static: tuple[tuple[str, str], ...] = ()
    # `server:`: the settings written there, by ServerSettings' field name, in its units
    # (seconds, bytes); rtp.server.settings.server_settings lays env and flags on top
    server: dict = field(default_factory=dict, compare=False)
    deploy_keep: int = 2  # `deploy: keep:` versions kept by `rtp deploy promote`
    doc: Doc = field(default=None, compare=False, repr=False)

    def target(self, name: str) -> Target | None:
        return next((t for t in self.targets if t.name == name), None)


@dataclass(frozen=True)
class Project:
    root: Path
    settings: Settings
    datasources: dict[str, Datasource]
    pipes: dict[str, Pipe]
    connections: dict[str, Connection] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.settings.name

    def resource(self, name: str) -> Datasource | Pipe | None:
        return self.datasources.get(name) or self.pipes.get(name)

    @property
    def endpoints(self) -> list[Pipe]:
        return [p for p in self.pipes.values() if p.type == "endpoint"]
