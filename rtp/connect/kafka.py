"""Kafka through confluent-kafka (librdkafka), imported only when a consumer starts.

Offsets are committed by hand, synchronously: ``begin`` commits the range's first offset
with ``rtp:<last>`` as the commit's metadata (the intent, kept by the broker with the
group), ``commit`` commits ``last + 1`` with empty metadata. A consumer that gets the
partition (after a crash or a rebalance) reads the intent in ``on_assign`` and must
re-insert exactly that range. Nothing is committed automatically, and a revoked
partition's buffered messages are dropped: they were not committed, the next owner
reads them again.
"""

from __future__ import annotations

import logging
import time

from rtp.connect import Message, Part
from rtp.errors import EngineError, Location

log = logging.getLogger("rtp.connect")
INTENT = "rtp:"


def client_config(connection) -> dict:
    """librdkafka settings for a :class:`~rtp.project.model.Connection`."""
    config = {
        "bootstrap.servers": connection.bootstrap_servers,
        "security.protocol": connection.security_protocol,
        "logger": log,  # librdkafka's own lines go through logging, not raw to stderr
    }
    if connection.sasl_mechanism:
        config["sasl.mechanism"] = connection.sasl_mechanism
    if connection.key is not None:
        config["sasl.username"] = connection.key
    if connection.secret is not None:
        config["sasl.password"] = connection.secret
    return config


def _library():
    try:
        import confluent_kafka
    except ImportError:
        raise EngineError(
            "Kafka needs confluent-kafka", code="RTP510", hint="pip install 'rtp[kafka]'"
        ) from None
    return confluent_kafka


class KafkaSource:
    """One consumer in the datasource's group; ``on_revoke(parts)`` is called when
    partitions go to another consumer (inside ``poll``)."""

    def __init__(self, connection, kafka, group_id: str, on_revoke=None) -> None:
        ck = _library()
        self._ck = ck
        self.topic = kafka.topic
        self.on_revoke = on_revoke
        self._intents: dict[Part, int] = {}
        self._committed: dict[Part, int] = {}
        self._consumer = ck.Consumer(
            {
                **client_config(connection),
                "group.id": group_id,
                "enable.auto.commit": False,
                "enable.auto.offset.store": False,
                "auto.offset.reset": kafka.auto_offset_reset,
                # a rebalance waits at most this long for a consumer stuck in an insert
                "max.poll.interval.ms": 300_000,
                "session.timeout.ms": 10_000,
                # how long the broker may hold a fetch for new data: bounds the delay
                # from a produced message to its row on brokers that answer only then
                "fetch.wait.max.ms": 50,
            }
        )
        self._consumer.subscribe(
            [kafka.topic], on_assign=self._assigned, on_revoke=self._revoked, on_lost=self._revoked
        )

    def _assigned(self, consumer, partitions) -> None:
        for tp in consumer.committed(partitions, timeout=10):
            part = (tp.topic, tp.partition)
            self._committed[part] = tp.offset
            meta = tp.metadata or ""
            if meta.startswith(INTENT):
                self._intents[part] = int(meta[len(INTENT) :])
                log.info(
                    "%s[%d]: re-inserting the range %d-%s begun before",
                    tp.topic,
                    tp.partition,
                    tp.offset,
                    meta[len(INTENT) :],
                )

    def _revoked(self, consumer, partitions) -> None:
        parts = [(tp.topic, tp.partition) for tp in partitions]
        for part in parts:
            self._intents.pop(part, None)
            self._committed.pop(part, None)
        if self.on_revoke is not None:
            self.on_revoke(parts)

    def poll(self, max_messages: int, timeout: float) -> list[Message]:
        # what is fetched already, else wait for the first message and take it with
        # whatever came along: consume(n, timeout) alone waits for all n or the timeout,
        # a delay on every batch of a quiet stream
        got = self._consumer.consume(max_messages, 0)
        if not got:
            got = self._consumer.consume(1, timeout)
            if got:
                got += self._consumer.consume(max_messages - 1, 0)
        out = []
        for m in got:
            err = m.error()
            if err is not None:
                if err.code() != self._ck.KafkaError._PARTITION_EOF:
                    log.warning("kafka: %s", err)
                continue
            kind, stamp = m.timestamp()
            out.append(
                Message(
                    m.topic(),
                    m.partition(),
                    m.offset(),
                    stamp / 1000 if kind != self._ck.TIMESTAMP_NOT_AVAILABLE else None,
                    m.key(),
                    m.value(),
                )
            )
        return out

    @property
    def assigned(self) -> bool:
        """Whether the group gave this consumer partitions yet."""
        return bool(self._committed)

    def pending(self, part: Part) -> int | None:
        return self._intents.get(part)

    def _commit(self, offsets: list) -> None:
        try:
            self._consumer.commit(offsets=offsets, asynchronous=False)
        except self._ck.KafkaException as exc:
            raise EngineError(
                f"Kafka refused the offset commit: {exc}",
                code="RTP510",
                hint="the partition may have moved to another consumer; it re-reads the range",
            ) from None

    def begin(self, ranges: dict[Part, tuple[int, int]]) -> None:
        TP = self._ck.TopicPartition
        self._commit(
            [
                TP(t, p, first, metadata=f"{INTENT}{last}")
                for (t, p), (first, last) in ranges.items()
            ]
        )

    def commit(self, ranges: dict[Part, tuple[int, int]]) -> None:
        TP = self._ck.TopicPartition
        self._commit([TP(t, p, last + 1, metadata="") for (t, p), (_, last) in ranges.items()])
        for part, (_, last) in ranges.items():
            self._intents.pop(part, None)
            self._committed[part] = last + 1

    def lag(self) -> dict[Part, int]:
        out = {}
        for (topic, partition), committed in list(self._committed.items()):
            tp = self._ck.TopicPartition(topic, partition)
            try:
                low, high = self._consumer.get_watermark_offsets(tp, timeout=2)
            except self._ck.KafkaException:
                continue
            out[(topic, partition)] = max(0, high - (committed if committed >= 0 else low))
        return out

    def close(self) -> None:
        self._consumer.close()  # leaves the group: its partitions go to the others now


def consumer(connection, settings, group_id: str, on_revoke=None) -> KafkaSource:
    """The :class:`~rtp.connect.Source` of one consumer of ``settings`` (a datasource's
    :class:`~rtp.project.model.KafkaSource`) in ``group_id``."""
    return KafkaSource(connection, settings, group_id, on_revoke)


def group_lag(connection, topic: str, group_id: str, timeout: float = 10) -> dict[int, int]:
    """Partition -> messages not committed by ``group_id`` (``rtp status``). Raises as
    :func:`describe`, and EngineError RTP510 when the broker fails mid-way."""
    ck = _library()
    meta = describe(connection, topic, timeout)
    consumer = ck.Consumer(
        {**client_config(connection), "group.id": group_id, "enable.auto.commit": False}
    )
    try:
        tps = [ck.TopicPartition(topic, p) for p in sorted(meta)]
        out = {}
        for tp in consumer.committed(tps, timeout=timeout):
            low, high = consumer.get_watermark_offsets(tp, timeout=timeout)
            out[tp.partition] = max(0, high - (tp.offset if tp.offset >= 0 else low))
        return out
    except ck.KafkaException as exc:
        raise EngineError(
            f"Kafka at {connection.bootstrap_servers}: {exc}", code="RTP510"
        ) from None
    finally:
        consumer.close()


def reachable(connection, timeout: float = 10):
    """The brokers' metadata (every topic). Raises EngineError RTP512, naming the
    connection's file and brokers, when no broker answers within ``timeout`` seconds."""
    ck = _library()
    from confluent_kafka.admin import AdminClient

    admin = AdminClient(client_config(connection))
    try:
        return admin.list_topics(timeout=timeout)
    except ck.KafkaException as exc:
        raise EngineError(
            f"connection '{connection.name}' ({connection.file}): no Kafka broker answered at "
            f"{connection.bootstrap_servers} within {timeout:g} s ({_reason(exc)})",
            code="RTP512",
            location=_setting(connection, "bootstrap_servers"),
            hint="check bootstrap_servers (and the security settings), and that the broker "
            "runs and is reachable from here",
        ) from None


def describe(connection, topic: str, timeout: float = 10, where: Location | None = None) -> dict:
    """The topic's partitions (id -> metadata). Raises as :func:`reachable`, and
    EngineError RTP513 when the topic doesn't exist (``where``: the datasource setting
    naming it). Lists every topic rather than asking for this one: a metadata request
    naming a topic creates it on brokers that auto-create topics (Tansu, Kafka's
    default)."""
    meta = reachable(connection, timeout)
    info = meta.topics.get(topic)
    if info is None or info.error is not None or not info.partitions:
        known = sorted(t for t in meta.topics if not t.startswith("__"))
        raise EngineError(
            f"topic '{topic}' does not exist on {connection.bootstrap_servers} "
            f"(connection '{connection.name}', {connection.file})",
            code="RTP513",
            location=where,
            hint="create the topic, or fix the datasource's topic"
            + (f"; the broker has: {', '.join(known[:10])}" if known else ""),
        )
    return info.partitions


def _reason(exc: Exception) -> str:
    err = exc.args[0] if exc.args else None
    return err.str() if hasattr(err, "str") else str(exc)


def _setting(connection, key: str) -> Location:
    """Where the connection file sets ``key`` (the file itself when it doesn't)."""
    if connection.doc is None:
        return Location(connection.file)
    return connection.doc.loc((key,))


def sample(
    connection, topic: str, count: int = 10, timeout: float = 10, where: Location | None = None
) -> list[Message]:
    """Up to ``count`` of the newest messages, spread over the topic's partitions, read
    without joining a group or committing anything (``rtp check --connections``).
    Raises as :func:`describe`."""
    ck = _library()
    parts = describe(connection, topic, timeout, where)
    consumer = ck.Consumer(
        {
            **client_config(connection),
            "group.id": "rtp-check",
            "enable.auto.commit": False,
            "enable.partition.eof": True,
        }
    )
    try:
        per = max(1, -(-count // len(parts)))  # ceil: every partition gets its share
        assign, left = [], {}
        for p in parts:
            low, high = consumer.get_watermark_offsets(ck.TopicPartition(topic, p), timeout=timeout)
            if high > low:
                assign.append(ck.TopicPartition(topic, p, max(low, high - per)))
                left[p] = per
        if not assign:
            return []
        consumer.assign(assign)
        out: list[Message] = []
        deadline = time.monotonic() + timeout
        # until each partition gave its share or its end: the share is counted, not read
        # off the high watermark (Tansu reports the last batch's start + 1 there)
        while left and time.monotonic() < deadline:
            for m in consumer.consume(sum(left.values()), 0.5):
                err, p = m.error(), m.partition()
                if err is not None:
                    if err.code() == ck.KafkaError._PARTITION_EOF:
                        left.pop(p, None)
                    continue
                if p not in left:
                    continue
                kind, stamp = m.timestamp()
                out.append(
                    Message(
                        m.topic(),
                        p,
                        m.offset(),
                        stamp / 1000 if kind != ck.TIMESTAMP_NOT_AVAILABLE else None,
                        m.key(),
                        m.value(),
                    )
                )
                left[p] -= 1
                if not left[p]:
                    del left[p]
        return sorted(out, key=lambda m: (m.partition, m.offset))
    except ck.KafkaException as exc:
        raise EngineError(
            f"Kafka at {connection.bootstrap_servers}: {exc}", code="RTP510"
        ) from None
    finally:
        consumer.close()
