"""``python -m bench [--quick]``: rtp against the raw engine, in one run.

Sections: endpoint overhead, ingestion, freshness, tooling, Kafka (see each module; Kafka
needs a broker, see bench/kafka.py). Every
figure is printed and written to ``bench/results/<UTC timestamp>.json``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import tempfile
import time
from pathlib import Path

from bench import endpoint, freshness, ingest, kafka, server_path, tooling
from bench.common import REPO, machine, versions
from bench.dataset import prepare

CONFIGS = {
    # events, seconds per side per round, rounds, clients, ingest rows, chunk, probes,
    # background events/s for freshness, generated project sizes, tooling runs
    "full": dict(
        events=5_000_000,
        seconds=6.0,
        rounds=2,
        concurrencies=(1, 16, 64),
        ingest_rows=200_000,
        chunk=5000,
        probes=100,
        rate=1000.0,
        sizes=(50, 200),
        runs=2,
        server_calls=2000,
    ),
    "quick": dict(
        events=200_000,
        seconds=3.0,
        rounds=1,
        concurrencies=(1, 16, 64),
        ingest_rows=100_000,
        chunk=5000,
        probes=15,
        rate=100.0,
        sizes=(50,),
        runs=1,
        server_calls=500,
    ),
    "tiny": dict(
        events=3_000,
        seconds=1.0,
        rounds=1,
        concurrencies=(1, 4),
        ingest_rows=2_000,
        chunk=500,
        probes=3,
        rate=20.0,
        sizes=(),
        runs=1,
        server_calls=50,
    ),
}
SECTIONS = ("endpoint", "ingest", "freshness", "tooling", "kafka")
INGEST_LABELS = {  # kind: (label, target ratio to the raw engine)
    "table_only": ("events, no views", "≥ 0.85×"),
    "with_views": ("events + 5 views", "≥ 0.95×"),
    "bad_rows": ("events, no views, 10% bad rows", ""),
}


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def run(
    mode: str,
    *,
    events: int | None = None,
    workdir: Path | None = None,
    sections=SECTIONS,
    out_dir: Path | None = None,
) -> tuple[dict, Path]:
    cfg = dict(CONFIGS[mode])
    if events:
        cfg["events"] = events
    started = time.perf_counter()
    result: dict = {
        "mode": mode,
        "started_utc": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "machine": machine(),
        "versions": versions(),
        "config": {k: list(v) if isinstance(v, tuple) else v for k, v in cfg.items()},
    }
    with tempfile.TemporaryDirectory(prefix="rtp-bench-") as tmp:
        project = workdir or Path(tmp) / "project"
        needs_data = {"endpoint", "ingest", "freshness", "kafka"} & set(sections)
        if needs_data:
            log(f"dataset: {cfg['events']:,} events -> {project}")
            t = time.perf_counter()
            facts = prepare(project, cfg["events"], log=log)
            result["dataset"] = {**facts, "prepare_s": time.perf_counter() - t}
        if "endpoint" in sections:
            log("endpoints ...")
            result["endpoint"] = endpoint.run(
                project,
                facts,
                seconds=cfg["seconds"],
                rounds=cfg["rounds"],
                concurrencies=cfg["concurrencies"],
                log=log,
            )
            result["server_path"] = server_path.run(cfg["server_calls"])
        if "ingest" in sections:
            log("ingestion ...")
            plain = ingest.plain_project(Path(tmp) / "plain")
            sizes = dict(rows=cfg["ingest_rows"], chunk=cfg["chunk"], log=log)
            result["ingest"] = {
                "table_only": ingest.run(plain, facts, **sizes),
                "with_views": ingest.run(project, facts, **sizes),
                "bad_rows": ingest.run(plain, facts, bad_every=10, **sizes),
            }
        if "freshness" in sections:
            log("freshness ...")
            result["freshness"] = freshness.run(
                project, facts, probes=cfg["probes"], rate=cfg["rate"], log=log
            )
        if "tooling" in sections:
            log("tooling ...")
            result["tooling"] = tooling.run(sizes=cfg["sizes"], runs=cfg["runs"], log=log)
        if "kafka" in sections:
            log("kafka ...")
            result["kafka"] = kafka.run(
                project,
                facts,
                rows=cfg["ingest_rows"],
                chunk=cfg["chunk"],
                probes=cfg["probes"],
                rate=cfg["rate"],
                log=log,
            )
    result["total_s"] = time.perf_counter() - started
    out_dir = out_dir or REPO / "bench" / "results"
    out_dir.mkdir(parents=True, exist_ok=True)
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    path = out_dir / f"{stamp}-{mode}.json"
    path.write_text(json.dumps(result, indent=2) + "\n")
    return result, path


def table(r: dict) -> str:
    """The figures as a Markdown table (what BENCHMARKS.md shows)."""
    lines = ["| measure | rtp | engine | ratio | target |", "|---|---:|---:|---:|---|"]
    ep = r.get("endpoint")
    if ep:
        lines = [endpoint_table(ep), "", *lines]
    sp = r.get("server_path")
    if sp:
        lines.append(
            f"| server's own time per call (no-op engine), p50 | {sp['p50_ms']:.2f} ms | | | "
            "≤ 0.3 ms |"
        )
    for kind, ing in (r.get("ingest") or {}).items():
        label, target = INGEST_LABELS[kind]
        e, h = ing["engine"], ing["http"]
        lines += [
            f"| ingest rows/s ({label}, {ing['senders']} senders) | {h['rows_per_s']:,.0f} | "
            f"{e['rows_per_s']:,.0f} | {ing['ratio']:.2f}× | {target} |",
            f"| ingest MB/s ({label}) | {h['mb_per_s']:.1f} | {e['mb_per_s']:.1f} | "
            f"{ing['ratio']:.2f}× | |",
        ]
    fr = r.get("freshness")
    if fr:
        behind = fr["background_achieved_events_per_s"]
        lines += [
            f"| freshness p50 ({fr['probes']} probes, {behind:,.0f} events/s behind) "
            f"| {fr['p50_ms']:.0f} ms | | | |",
            f"| freshness p99 | {fr['p99_ms']:.0f} ms | | | ≤ 1000 ms |",
        ]
    tl = r.get("tooling")
    if tl:
        base = tl["engine_start_s"]
        for name, f in tl["projects"].items():
            for key in ("check", "deploy_empty", "deploy_unchanged", "test"):
                if f"{key}_s" in f:
                    lines.append(
                        f"| rtp {key.replace('_', ' ')}, {name} | {f[key + '_s']:.2f} s "
                        f"| {base:.2f} s | {f[key + '_ratio']:.1f}× | |"
                    )
    return "\n".join(lines)


def endpoint_table(ep: dict) -> str:
    """Per endpoint and concurrency: p50/p99 and requests/s over HTTP and on the engine,
    the ratios, rows read per call, the answer cache's hit rate over HTTP ("—": the
    endpoint has no ``cache``) and which load generator took the HTTP figure."""
    lines = [
        "| endpoint | clients | rtp p50 | rtp p99 | rtp req/s | engine p50 | engine p99 "
        "| engine req/s | p50 ratio | req/s ratio | rows read | cache hits | generator |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for pipe, f in ep["pipes"].items():
        for key in sorted((k for k in f if k.startswith("c")), key=lambda k: int(k[1:])):
            c = f[key]
            e, h = c["engine"], c["http"]
            # "—": no call completed inside the measuring window (each took longer)
            rtp = (
                f"{h['p50_ms']:.1f} ms | {h['p99_ms']:.1f} ms | {h['throughput_rps']:,.0f}"
                if h["requests"]
                else "— | — | —"
            )
            ratios = (
                f"{c['p50_ratio']:.2f}× | {c['throughput_ratio']:.2f}×"
                if h["requests"]
                else "— | —"
            )
            hits = h.get("cache_hit_rate")
            lines.append(
                f"| {pipe} | {key[1:]} | {rtp} | {e['p50_ms']:.1f} ms | {e['p99_ms']:.1f} ms "
                f"| {e['throughput_rps']:,.0f} | {ratios} | {f['rows_read_p50']:,.0f} "
                f"| {'—' if hits is None else f'{hits:.1%}'} | {h['generator']} |"
            )
    return "\n".join(lines)


def header(r: dict) -> str:
    m, v = r["machine"], r["versions"]
    out = [
        f"machine: {m['cores']} cores, {m['cpu']}, load average {m['load_average_1m_at_start']}",
        f"versions: rtp {v['rtp']}, chDB {v['chdb']} (ClickHouse {v['clickhouse']}), "
        f"Python {v['python']}",
    ]
    if "dataset" in r:
        d = r["dataset"]
        out.append(
            f"dataset: {d['events_rows']:,} events ({d['events_ndjson_bytes'] / 1e6:.0f} MB "
            f"NDJSON), bulk load {d['bulk_load_s']:.0f} s"
            + (
                f"; scheduled copies run once: {d['copies_s']:.1f} s"
                if d.get("copies_rows")
                else ""
            )
        )
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small dataset, < 2 minutes")
    parser.add_argument("--tiny", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--events", type=int, help="events in the dataset")
    parser.add_argument("--workdir", type=Path, help="keep (and reuse) the loaded project here")
    parser.add_argument("--only", action="append", choices=SECTIONS, help="run only this section")
    parser.add_argument("--out", type=Path, help="folder for the JSON result")
    args = parser.parse_args(argv)
    mode = "tiny" if args.tiny else "quick" if args.quick else "full"
    result, path = run(
        mode,
        events=args.events,
        workdir=args.workdir,
        sections=tuple(args.only or SECTIONS),
        out_dir=args.out,
    )
    print(header(result))
    print(table(result))
    if "kafka" in result:
        print(kafka.table(result["kafka"]))
    print(f"total {result['total_s']:.0f} s; JSON: {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
