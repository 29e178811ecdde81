"""rtp: real-time data APIs on ClickHouse, declared in files."""

__version__ = "0.1.0"
