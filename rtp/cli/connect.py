"""``rtp connect``: run the project's stream consumers (Kafka) without the HTTP server.

``rtp serve`` and ``rtp dev`` run the same consumers in their own process; ``rtp
connect`` is for running them apart, any number of processes against a ClickHouse
server (they share each datasource's consumer group). On the embedded engine it must be
the process holding the engine: when ``rtp serve``/``rtp dev`` holds it, the consumers
already run there, so it refuses (RTP510) instead of fighting for the data folder.
"""

from __future__ import annotations

import signal
import threading
import time
from pathlib import Path

import typer

from rtp.cli.common import PROJECT_OPTION, TARGET_OPTION, load_valid, open_target
from rtp.cli.output import console, err_console, exit_for, fail
from rtp.errors import EngineError, ProjectError


def connect(
    datasource: str = typer.Option(
        None, "--datasource", "-d", help="Consume for this datasource only."
    ),
    target: str = TARGET_OPTION,
    project: Path = PROJECT_OPTION,
    batch: int = typer.Option(5000, "--batch", help="Most messages per insert."),
    idle_exit: float = typer.Option(
        None,
        "--idle-exit",
        metavar="SECONDS",
        help="Stop after SECONDS without new messages (batch jobs, tests).",
    ),
) -> None:
    """Consume the Kafka topics of the project's datasources into the target until
    stopped (Ctrl-C, SIGTERM). Offsets are committed only after the rows are durable."""
    from rtp import connect as streams
    from rtp.engine import owner
    from rtp.engine.target import resolve_target

    model, root = load_valid(project)
    chosen = streams.active(model, datasource)
    if not chosen:
        what = f"datasource '{datasource}'" if datasource else "the project"
        error = ProjectError(
            f"{what} has no Kafka source with an active connection",
            code="RTP111",
            hint="a datasource needs kafka: {connection, topic} "
            "and its connection bootstrap_servers (docs/connectors.md)",
        )
        fail(error)
        raise exit_for(error)
    if resolve_target(model, target) == "embedded":
        holder = owner.read_owner(root)
        if holder is not None:
            error = EngineError(
                f"the embedded engine is held by process {holder['pid']} "
                f"({holder.get('command') or 'another rtp command'})",
                code="RTP510",
                hint="rtp serve and rtp dev run the Kafka consumers themselves; stop that "
                "process to run rtp connect alone, or deploy to a ClickHouse server",
            )
            fail(error)
            raise exit_for(error)
    backend = open_target(model, target, "rtp connect")
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    consumers = streams.start(model, backend, only=datasource, batch=batch)
    for c in consumers:
        err_console.print(f"consuming {c.ds.kafka.topic} -> {c.ds.name} (group {c.group_id})")
    try:
        while not stopped.wait(0.5):
            if idle_exit is not None and all(
                time.monotonic() - c.last_message > idle_exit for c in consumers
            ):
                break
    except KeyboardInterrupt:
        pass
    finally:
        consumers.stop()
        backend.close()
        console.print(
            ", ".join(f"{c.ds.name}: {c.rows} rows, {c.quarantined} quarantined" for c in consumers)
        )
