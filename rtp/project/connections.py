"""Connections (``connections/<name>.yaml``, Tinybird ``.connection`` files) and the
``kafka:`` key of datasources, read into :class:`~rtp.project.model.Connection` and
:class:`~rtp.project.model.KafkaSource`.

Values may name secrets the way Tinybird files do, ``{{ tb_secret("NAME", "default") }}``
(also ``{{ tb_var(...) }}``): they are read from the environment variable ``NAME`` when
the project loads, else the default. A secret with neither is a problem (RTP107), not an
empty password sent to a broker.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from rtp.errors import Location, Problems, ProjectError, RtpError
from rtp.project.model import KAFKA_META_COLUMNS, Connection, Datasource, KafkaSource
from rtp.project.source import Doc, load_yaml

_SECRET = re.compile(
    r"\{\{\s*tb_(?:secret|var)\(\s*(['\"])(?P<name>[^'\"]+)\1\s*"
    r"(?:,\s*(['\"])(?P<default>[^'\"]*)\3\s*)?\)\s*\}\}"
)


def resolve_secrets(value, doc: Doc, path: tuple, problems: Problems, env=None):
    """``value`` with each ``{{ tb_secret("NAME", "default") }}`` replaced by the
    environment's NAME (else the default); a secret with neither is reported."""
    if not isinstance(value, str) or "{{" not in value:
        return value
    env = os.environ if env is None else env

    def sub(m: re.Match) -> str:
        name, default = m.group("name"), m.group("default")
        if name in env:
            return env[name]
        if default is not None:
            return default
        problems.add(
            ProjectError(
                f"secret '{name}' is not set",
                code="RTP107",
                location=doc.loc(path),
                hint=f"export {name}=... before running rtp (or give a default: "
                f'tb_secret("{name}", "value"))',
            )
        )
        return ""

    return _SECRET.sub(sub, value)


def read_connection(path: Path, rel: str, problems: Problems) -> Connection | None:
    """One connection file. Problems are added to ``problems``; returns None when the
    file can't be used (unreadable, or a type other than kafka)."""
    from rtp.project import tinybird
    from rtp.project.load import _validate
    from rtp.project.schema import ConnectionFile

    try:
        if path.suffix == ".connection":
            doc = tinybird.parse_connection(path.read_text(encoding="utf-8"), rel).doc
        else:
            doc = load_yaml(path, rel)
    except (RtpError, UnicodeDecodeError) as exc:
        problems.add(
            exc
            if isinstance(exc, RtpError)
            else ProjectError("file is not UTF-8 text", code="RTP101", location=Location(rel))
        )
        return None
    data = doc.data if isinstance(doc.data, dict) else doc.data
    if isinstance(data, dict) and path.suffix == ".connection":
        other = sorted(k for k in data if k not in ConnectionFile.model_fields)
        if data.get("type") == "kafka" and other:
            for key in other:
                problems.add(
                    ProjectError(
                        f"{key.upper()} is not a Kafka connection setting rtp knows; ignored",
                        code="RTP107",
                        location=doc.loc((key,), key=True),
                        severity="warning",
                    )
                )
            data = {k: v for k, v in data.items() if k not in other}
        elif data.get("type") not in (None, "kafka"):
            problems.add(
                ProjectError(
                    f"{str(data.get('type')).upper()} connections are not supported by rtp; the "
                    "datasources that use this one get no data from it",
                    code="RTP107",
                    location=doc.loc(("type",)),
                    severity="warning",
                    hint="rtp reads Kafka connections; feed the others through the Events API "
                    "(POST /v0/events) or `rtp append`",
                )
            )
            return None
    file, _ = _validate(ConnectionFile, doc, data, problems)
    if file is None or file.type is None:
        return None
    values = {
        k: resolve_secrets(getattr(file, k), doc, (k,), problems)
        for k in ("bootstrap_servers", "key", "secret", "schema_registry_url")
    }
    return Connection(
        name=path.stem,
        file=rel,
        type=file.type,
        bootstrap_servers=(values["bootstrap_servers"] or "").strip(),
        security_protocol=file.security_protocol or "PLAINTEXT",
        sasl_mechanism=file.sasl_mechanism,
        key=values["key"],
        secret=values["secret"],
        schema_registry_url=values["schema_registry_url"] or None,
        doc=doc,
    )


def read_kafka(doc: Doc, file, problems: Problems) -> KafkaSource | None:
    """The datasource's ``kafka:`` key (validated by the pydantic pass), secrets read."""
    spec = getattr(file, "kafka", None)
    if spec is None or spec.connection is None or spec.topic is None:
        return None
    return KafkaSource(
        connection=spec.connection,
        topic=resolve_secrets(spec.topic, doc, ("kafka", "topic"), problems),
        group_id=resolve_secrets(spec.group_id, doc, ("kafka", "group_id"), problems) or None,
        auto_offset_reset=spec.auto_offset_reset or "latest",
        store_raw_value=spec.store_raw_value,
    )


def check_references(
    datasources: dict[str, Datasource], connections: dict[str, Connection], problems: Problems
) -> None:
    """Each Kafka datasource names a known connection; ``__value`` is there to keep the
    raw value when ``store_raw_value`` asks for it."""
    for ds in datasources.values():
        if ds.kafka is None:
            continue
        if ds.kafka.connection not in connections:
            known = f"; known: {', '.join(sorted(connections))}" if connections else ""
            if ds.file.endswith(".datasource"):
                # Tinybird Classic kept connections in the workspace, not in files: the
                # project is valid there; here the table is made and fed by other means
                problems.add(
                    ProjectError(
                        f"connection '{ds.kafka.connection}' is not in the project: the "
                        "datasource is created but not fed from Kafka",
                        code="RTP108",
                        location=ds.loc("kafka", "connection"),
                        hint=f"add a {ds.kafka.connection}.connection file (TYPE kafka, "
                        f"KAFKA_BOOTSTRAP_SERVERS ...) to consume the topic{known}",
                        severity="warning",
                    )
                )
                continue
            problems.add(
                ProjectError(
                    f"unknown connection '{ds.kafka.connection}'",
                    code="RTP108",
                    location=ds.loc("kafka", "connection"),
                    hint="create connections/<name>.yaml or a Tinybird <name>.connection file"
                    + known,
                )
            )
        if ds.kafka.store_raw_value and ds.column("__value") is None:
            problems.add(
                ProjectError(
                    "store_raw_value needs a `__value String` column to store it in",
                    code="RTP107",
                    location=ds.loc("kafka", "store_raw_value"),
                    hint=f"add the column; metadata columns: {', '.join(KAFKA_META_COLUMNS)}",
                )
            )
