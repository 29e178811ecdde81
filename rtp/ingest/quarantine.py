"""The quarantine table ``<datasource>_quarantine``: when, why, and the row as received."""

from __future__ import annotations

QUARANTINE_SUFFIX = "_quarantine"


def quarantine_table(datasource: str) -> str:
    """The name of ``datasource``'s quarantine table."""
    return datasource + QUARANTINE_SUFFIX


def quarantine_ddl(datasource: str, *, precise: bool = True, window: bool = True) -> str:
    """The quarantine table: when (UTC), why, and the row as received. ``precise``
    False keeps seconds only, for ClickHouse servers older than 20.1 (no DateTime64)."""
    stamp = "DateTime64(3)" if precise else "DateTime"
    # the window: a retried idempotent insert does not quarantine its bad rows twice
    window = " SETTINGS non_replicated_deduplication_window = 1000" if window else ""
    return (
        f"CREATE TABLE IF NOT EXISTS `{quarantine_table(datasource)}` "
        f"(`timestamp` {stamp}, `error` String, `raw` String) "
        f"ENGINE = MergeTree ORDER BY timestamp{window}"
    )
