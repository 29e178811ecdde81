"""Rows into a datasource, bad rows into ``<datasource>_quarantine``: the one ingestion
path, used by ``POST /v0/events``, ``rtp append``, ``rtp dev``'s fixtures and
``rtp test``'s fixtures.

:class:`RowMapper` is built once per datasource: each column's JSON path (``$.a.b[0]``)
and a checker for its ClickHouse type. ``map_lines`` turns NDJSON lines into rows
(dicts, for ``backend.insert_json``) and rejected (error, raw line) pairs; ``insert``
writes both, rejected rows to ``<datasource>_quarantine``. Types Python does not check
(Map, Tuple, JSON ...) are left to the engine: if it refuses a batch, ``insert`` halves
it until it finds the rows it refuses and quarantines them with ClickHouse's message.

A column missing from a row takes its ``default`` when it has one, NULL when it is
Nullable; otherwise the row is quarantined (a silent zero or empty string would hide
a broken producer). :func:`read_records` reads the data files (NDJSON, CSV, Parquet)
that ``rtp append`` and fixtures load, keeping each row's line for error messages.
"""

from rtp.ingest.checks import CHECK_ERRORS, RowError, checker
from rtp.ingest.files import FORMATS, Record, by_name, kind_of, read_records
from rtp.ingest.mapper import RowMapper
from rtp.ingest.paths import parse_path
from rtp.ingest.quarantine import QUARANTINE_SUFFIX, quarantine_ddl, quarantine_table
from rtp.ingest.writer import insert, insert_rows, refused_rows, supports_tokens

__all__ = [
    "CHECK_ERRORS",
    "FORMATS",
    "QUARANTINE_SUFFIX",
    "Record",
    "RowError",
    "RowMapper",
    "by_name",
    "checker",
    "insert",
    "insert_rows",
    "kind_of",
    "parse_path",
    "quarantine_ddl",
    "quarantine_table",
    "read_records",
    "refused_rows",
    "supports_tokens",
]
