"""``rtp status``: the project's stream consumers' lag, read from the broker.

Lag is what the consumer group has not committed: messages on the topic that are not
yet durable rows. It reads the brokers only, so it works beside a running ``rtp serve``
or ``rtp connect`` (which also publish it at ``/metrics`` as ``rtp_kafka_lag``).
"""

from __future__ import annotations

import json
from pathlib import Path

import typer

from rtp.cli.common import PROJECT_OPTION, load_valid
from rtp.cli.output import console, fail
from rtp.errors import RtpError


def status(
    project: Path = PROJECT_OPTION,
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Print each Kafka datasource's consumer lag per partition."""
    from rtp import connect as streams
    from rtp.connect.runner import group_id

    model, _ = load_valid(project)
    report, failed = [], False
    for ds in streams.active(model):
        conn = model.connections[ds.kafka.connection]
        entry = {"datasource": ds.name, "topic": ds.kafka.topic, "group": group_id(model, ds)}
        try:
            entry["lag"] = streams.module(conn).group_lag(conn, ds.kafka.topic, entry["group"])
        except RtpError as exc:
            failed = True
            entry["error"] = exc.message
            if not as_json:
                fail(exc)
        report.append(entry)
    if as_json:
        print(json.dumps(report, indent=2))
    else:
        if not report:
            console.print("no datasource has an active Kafka connection")
        for e in report:
            if "lag" in e:
                parts = ", ".join(f"[{p}] {n}" for p, n in sorted(e["lag"].items()))
                console.print(
                    f"{e['datasource']} <- {e['topic']} (group {e['group']}): "
                    f"lag {sum(e['lag'].values())}  {parts}"
                )
    raise typer.Exit(1 if failed else 0)
