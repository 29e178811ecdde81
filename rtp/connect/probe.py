"""``rtp check --connections``: each connection validated against its brokers, the way
``tb deploy --check`` does: the broker answers (within a timeout), each datasource's topic
exists, and a sample of its newest messages (read without joining the group or committing
anything) decodes into the datasource's columns. A column that some sampled messages
don't fit is reported once, with those messages' topic/partition/offset.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from rtp.connect import module
from rtp.connect.runner import meta_columns, to_event
from rtp.errors import RtpError, SchemaError
from rtp.ingest import RowError, RowMapper

SHOWN = 3  # failing messages quoted per column


@dataclass
class Report:
    """What was checked for one datasource (or one connection no datasource uses)."""

    connection: str
    file: str
    brokers: str
    datasource: str | None = None
    topic: str | None = None
    partitions: int | None = None
    sampled: int = 0
    failing: dict[str, int] = field(default_factory=dict)  # column -> messages
    status: str = "ok"  # ok | inactive | failed

    def to_dict(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if v is not None}


def check_connections(
    project, *, samples: int = 10, timeout: float = 5.0
) -> tuple[list[Report], list[RtpError]]:
    """Every connection of ``project`` and every datasource reading from one. Returns the
    reports and the problems found (RTP512 broker unreachable, RTP513 no such topic,
    RTP205 sampled messages that don't fit a column, RTP510 other broker failures);
    raises nothing for a broker's answer."""
    reports: list[Report] = []
    problems: list[RtpError] = []
    users: dict[str, list] = {}
    for ds in project.datasources.values():
        if ds.kafka is not None and ds.kafka.connection in project.connections:
            users.setdefault(ds.kafka.connection, []).append(ds)
    for name, conn in sorted(project.connections.items()):
        base = {"connection": name, "file": conn.file, "brokers": conn.bootstrap_servers}
        if not conn.bootstrap_servers:
            reports.append(Report(**base, status="inactive"))
            continue
        source = module(conn)
        if name not in users:
            report = Report(**base)
            try:
                source.reachable(conn, timeout)
            except RtpError as exc:
                problems.append(exc)
                report.status = "failed"
            reports.append(report)
            continue
        for ds in users[name]:
            report = Report(**base, datasource=ds.name, topic=ds.kafka.topic)
            reports.append(report)
            try:
                where = ds.loc("kafka", "topic")
                report.partitions = len(source.describe(conn, ds.kafka.topic, timeout, where))
                msgs = source.sample(conn, ds.kafka.topic, samples, timeout, where)
            except RtpError as exc:
                problems.append(exc)
                report.status = "failed"
                if exc.code == "RTP512":
                    break  # the next datasources of this connection would wait in vain
                continue
            report.sampled = len(msgs)
            found = decode(ds, msgs)
            report.failing = {k: n for k, (n, _) in found.items()}
            problems.extend(e for _, e in found.values())
            if found:
                report.status = "failed"
    return reports, problems


def decode(ds, msgs) -> dict[str, tuple[int, RtpError]]:
    """Column (or ``"(value)"`` for messages that are no JSON object) -> how many sampled
    messages fail it, and the problem naming the first few by topic[partition]@offset."""
    meta = meta_columns(ds)
    columns = [(i, c, RowMapper(replace(ds, columns=(c,)))) for i, c in enumerate(ds.columns)]
    fails: dict[str, list[str]] = {}
    places: dict[str, object] = {}
    for msg in msgs:
        where = f"{msg.topic}[{msg.partition}]@{msg.offset}"
        try:
            event = to_event(ds, msg, meta)
        except RowError as exc:
            fails.setdefault("(value)", []).append(f"{where}: {exc}")
            places["(value)"] = ds.loc("kafka", "topic")
            continue
        for i, col, mapper in columns:
            try:
                mapper.map(event)
            except RowError as exc:
                fails.setdefault(col.name, []).append(f"{where}: {exc}")
                places[col.name] = ds.loc("columns", i)
    out = {}
    for name, reasons in fails.items():
        what = "are not JSON objects" if name == "(value)" else f"don't fit column '{name}'"
        out[name] = (
            len(reasons),
            SchemaError(
                f"{len(reasons)} of {len(msgs)} sampled messages of '{ds.kafka.topic}' {what}: "
                + "; ".join(reasons[:SHOWN])
                + ("; ..." if len(reasons) > SHOWN else ""),
                code="RTP205",
                location=places[name],
                hint=(
                    "the producer must send JSON objects"
                    if name == "(value)"
                    else "fix the column's type or JSON path (or make it Nullable / give it "
                    "a default), or the producer"
                )
                + f"; such messages would go to {ds.name}_quarantine",
            ),
        )
    return out
