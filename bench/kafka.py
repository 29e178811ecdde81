"""Kafka: from a topic to durable rows, beside the Events API and the raw engine, and
freshness from a produced event to ``recommendations``.

``python -m bench.kafka [--rows N] [--probes N]`` (or the ``kafka`` section of ``python -m
bench``) needs a Kafka-compatible broker: ``$RTP_BENCH_KAFKA`` or ``$RTP_TEST_KAFKA``
(``.ci/services/kafka.sh`` starts Tansu); without one the section says so and measures
nothing.

Throughput: the same NDJSON lines (``chunk`` rows a body, from the generated events file)
go into the same deployed project three ways, so the five materialized views do the same
work: a raw ``INSERT ... FORMAT JSONEachRow`` per body, ``POST /v0/events`` bodies from a
load generator process (:mod:`bench.ingest`), and rtp's Kafka consumer reading them as one
message each from a topic of ``partitions`` partitions. The consumer runs in this process
on the project's embedded engine; it has joined its group before the clock starts, and
the messages are all on the topic by then (produced by confluent-kafka, timed apart), so
the figure is topic -> durable rows, offsets committed. Rates count the NDJSON bytes and
rows.

Freshness: ``rtp serve`` runs the consumer of the ``events`` datasource (its connection
made active by ``RTP_KAFKA_BROKER``) while ``examples/generator.py --kafka`` produces a
background load; each probe produces one ``view`` by a new shopper in a new session,
waits for the broker's acknowledgement, then polls ``recommendations`` back to back until
the top recommendation is of that category with reason ``session``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from contextlib import contextmanager
from pathlib import Path

import httpx

from bench import ingest
from bench.common import REPO, Server, env, pct
from bench.dataset import data_path
from bench.freshness import catalogue, probe_view, recommends


def broker() -> str | None:
    return os.environ.get("RTP_BENCH_KAFKA") or os.environ.get("RTP_TEST_KAFKA")


@contextmanager
def fed_from(project: Path, host: str, topic: str):
    """The project's ``events`` datasource reading ``topic`` on ``host`` (its connection
    reads RTP_KAFKA_BROKER), for the block; the file is restored after."""
    path = project / "datasources" / "events.yaml"
    text = path.read_text()
    before = os.environ.get("RTP_KAFKA_BROKER")
    path.write_text(text.replace("topic: storefront_events", f"topic: {topic}"))
    os.environ["RTP_KAFKA_BROKER"] = host
    try:
        yield
    finally:
        path.write_text(text)
        if before is None:
            os.environ.pop("RTP_KAFKA_BROKER", None)
        else:
            os.environ["RTP_KAFKA_BROKER"] = before


def create_topic(host: str, topic: str, partitions: int) -> None:
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": host})  # kept: its futures need the handle
    for f in admin.create_topics([NewTopic(topic, partitions, 1)]).values():
        f.result(30)


def produce(host: str, topic: str, lines: list[bytes], partitions: int) -> float:
    """Every line as one message (round robin over partitions); seconds taken."""
    from confluent_kafka import Producer

    p = Producer({"bootstrap.servers": host, "linger.ms": 20, "batch.size": 1_000_000})
    start = time.perf_counter()
    for i, line in enumerate(lines):
        while True:
            try:
                p.produce(topic, line.rstrip(b"\n"), partition=i % partitions)
                break
            except BufferError:  # the local queue is full: let it drain
                p.poll(0.05)
    if p.flush(120):
        raise RuntimeError("the broker did not take every message")
    return time.perf_counter() - start


def joined(project: Path, batch: int) -> dict:
    """rtp's consumer of ``events`` in this process, once its group gave it partitions
    (and no message yet: the topic is still empty)."""
    from rtp.connect.runner import Consumer
    from rtp.engine.embedded import EmbeddedBackend
    from rtp.project.load import load_project

    model, problems = load_project(project)
    if problems.errors:
        raise RuntimeError(f"the project has errors: {problems.errors[0]}")
    backend = EmbeddedBackend(data_path(project))
    try:
        consumer = Consumer(model, model.datasources["events"], backend, batch=batch)
        source = consumer._open()
        deadline = time.monotonic() + 60
        while not source.assigned:  # join the group before the clock starts
            if consumer.step():
                raise RuntimeError("messages arrived before the group was joined")
            if time.monotonic() > deadline:
                raise RuntimeError("the consumer got no partitions in 60 s")
        return {"consumer": consumer, "backend": backend, "source": source}
    except BaseException:
        backend.close()
        raise


def drain(parts: dict, rows: int, timeout: float = 600) -> float:
    """Seconds until the consumer made ``rows`` rows durable (offsets committed)."""
    consumer, source = parts["consumer"], parts["source"]
    start = time.perf_counter()
    while consumer.rows + consumer.quarantined < rows:
        consumer.step()
        if time.perf_counter() - start > timeout:
            raise RuntimeError(f"only {consumer.rows} of {rows} rows in {timeout:.0f} s")
    elapsed = time.perf_counter() - start
    source.close()
    parts["backend"].close()
    if consumer.quarantined:
        raise RuntimeError(f"{consumer.quarantined} messages quarantined")
    return elapsed


def throughput(
    project: Path, facts: dict, host: str, *, rows: int, chunk: int, partitions: int, log
) -> dict:
    parts = ingest.bodies(Path(facts["files"]) / "events.ndjson", rows, chunk)
    lines = [line for body in parts for line in body.splitlines(keepends=True)]
    nrows, nbytes = len(lines), sum(len(p) for p in parts)
    raw_s = ingest.raw_insert(project, parts)
    log("  raw insert done")
    http = ingest.http_insert(project, parts, senders=4)
    if http["rows"] != nrows:
        raise RuntimeError(f"the server took {http['rows']} of {nrows} rows")
    log("  HTTP ingest done")
    topic = f"bench_{uuid.uuid4().hex[:8]}"
    create_topic(host, topic, partitions)
    with fed_from(project, host, topic):
        ready = joined(project, batch=chunk)
        produce_s = produce(host, topic, lines, partitions)
        kafka_s = drain(ready, nrows)
    log("  Kafka consume done")

    def rate(seconds: float) -> dict:
        return {
            "seconds": seconds,
            "rows_per_s": nrows / seconds,
            "mb_per_s": nbytes / seconds / 1e6,
        }

    engine, api, kafka = rate(raw_s), rate(http["elapsed"]), rate(kafka_s)
    return {
        "rows": nrows,
        "bytes": nbytes,
        "partitions": partitions,
        "batch": chunk,
        "produce_s": produce_s,
        "engine": engine,
        "http": api,
        "kafka": kafka,
        "ratio_to_engine": kafka["rows_per_s"] / engine["rows_per_s"],
        "ratio_to_http": kafka["rows_per_s"] / api["rows_per_s"],
    }


def freshness(project: Path, facts: dict, host: str, *, probes: int, rate: float, log) -> dict:
    from confluent_kafka import Producer

    products = list(catalogue(Path(facts["files"])).values())
    topic = f"bench_fresh_{uuid.uuid4().hex[:8]}"
    create_topic(host, topic, 2)
    samples: list[float] = []
    skipped = timeouts = 0
    with fed_from(project, host, topic), Server(project) as server:
        background = subprocess.Popen(
            [sys.executable, str(REPO / "examples" / "generator.py"), "--kafka", host]
            + ["--topic", topic, "--rate", str(rate), "--no-catalogue", "--duration", "0"],
            env=env(),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        producer = Producer({"bootstrap.servers": host, "linger.ms": 0})
        try:
            lag = 'rtp_kafka_lag{datasource="events"'
            deadline = time.monotonic() + 120
            while lag not in httpx.get(f"{server.url}/metrics").text:  # the group is joined
                if time.monotonic() > deadline:
                    raise RuntimeError("rtp serve's consumer got no partitions in 120 s")
                time.sleep(0.5)
            with httpx.Client(base_url=server.url, timeout=30) as client:
                stamp = int(time.time())
                for i in range(probes):
                    product = products[i % len(products)]
                    user, session = f"kbench_u{stamp}_{i}", f"kbench_s{stamp}_{i}"
                    params = {"user_id": user, "session_id": session, "limit": 3}

                    def shows(params=params, product=product) -> bool:
                        return recommends(client, params, product)

                    if shows():
                        skipped += 1
                        continue
                    event = probe_view(user, session, product)
                    producer.produce(topic, json.dumps(event).encode(), key=user.encode())
                    if producer.flush(10):
                        raise RuntimeError("the broker did not acknowledge a probe")
                    acked = time.perf_counter()
                    while not shows():
                        if time.perf_counter() - acked > 10:
                            timeouts += 1
                            break
                    else:
                        samples.append(time.perf_counter() - acked)
        finally:
            background.terminate()
            background.wait()
    log(f"  {len(samples)} Kafka freshness probes done")
    return {
        "probes": len(samples),
        "skipped": skipped,
        "timeouts": timeouts,
        "background_rate_events_per_s": rate,
        "p50_ms": pct(samples, 50) * 1000,
        "p99_ms": pct(samples, 99) * 1000,
        "max_ms": max(samples, default=0) * 1000,
    }


def run(
    project: Path,
    facts: dict,
    *,
    rows: int,
    chunk: int = 5000,
    partitions: int = 1,
    probes: int = 30,
    rate: float = 100.0,
    log=print,
) -> dict:
    """Both measurements, or ``{"skipped": reason}`` without a broker."""
    host = broker()
    if not host:
        return {"skipped": "no broker: set RTP_BENCH_KAFKA or RTP_TEST_KAFKA"}
    return {
        "broker": "Tansu" if os.environ.get("RTP_TEST_KAFKA") == host else host,
        "throughput": throughput(
            project, facts, host, rows=rows, chunk=chunk, partitions=partitions, log=log
        ),
        "freshness": freshness(project, facts, host, probes=probes, rate=rate, log=log),
    }


def table(r: dict) -> str:
    """Markdown rows for BENCHMARKS.md."""
    if "skipped" in r:
        return f"| Kafka | skipped: {r['skipped']} | | | |"
    t, f = r["throughput"], r["freshness"]
    k, h, e = t["kafka"], t["http"], t["engine"]
    where = f"{t['partitions']} partition(s), {t['batch']:,} messages a batch"
    return "\n".join(
        [
            "| measure | Kafka -> rows | Events API | engine | Kafka / API | Kafka / engine |",
            "|---|---:|---:|---:|---:|---:|",
            f"| rows/s ({where}) | {k['rows_per_s']:,.0f} | {h['rows_per_s']:,.0f} | "
            f"{e['rows_per_s']:,.0f} | {t['ratio_to_http']:.2f}× | {t['ratio_to_engine']:.2f}× |",
            f"| MB/s | {k['mb_per_s']:.1f} | {h['mb_per_s']:.1f} | {e['mb_per_s']:.1f} | | |",
            f"| freshness p50, produce -> recommendations ({f['probes']} probes) | "
            f"{f['p50_ms']:.0f} ms | | | | |",
            f"| freshness p99 | {f['p99_ms']:.0f} ms | | | | |",
        ]
    )


def main(argv: list[str] | None = None) -> int:
    from bench.dataset import prepare

    parser = argparse.ArgumentParser(prog="python -m bench.kafka", description=__doc__)
    parser.add_argument("--events", type=int, default=200_000, help="events in the dataset")
    parser.add_argument("--rows", type=int, default=100_000, help="rows for the throughput")
    parser.add_argument("--chunk", type=int, default=5000, help="rows a body / a batch")
    parser.add_argument("--partitions", type=int, default=1, help="the topic's partitions")
    parser.add_argument("--probes", type=int, default=30, help="freshness probes")
    parser.add_argument("--rate", type=float, default=100, help="background events/s")
    parser.add_argument("--workdir", type=Path, help="keep (and reuse) the loaded project")
    args = parser.parse_args(argv)

    def log(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    with tempfile.TemporaryDirectory(prefix="rtp-bench-kafka-") as tmp:
        project = args.workdir or Path(tmp) / "project"
        facts = prepare(project, args.events, log=log)
        result = run(
            project,
            facts,
            rows=args.rows,
            chunk=args.chunk,
            partitions=args.partitions,
            probes=args.probes,
            rate=args.rate,
            log=log,
        )
    print(json.dumps(result, indent=2))
    print(table(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
