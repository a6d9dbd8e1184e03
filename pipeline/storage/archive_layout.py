"""The click archive's layout: a Parquet dataset partitioned by event date, at any fsspec URL.

    <root>/date=2026-12-04/part-0003-00000000000000012000-00000000000000012999.parquet
    <root>/_progress/partition-0003.json     the flush in flight for partition 3 (see archive.py)

A data file holds the valid clicks of one flush of one Kafka partition whose events fall on that
UTC date; its name carries the partition and the first and last offset the flush consumed, so
the same flush written twice (after a crash) lands under the same name and replaces itself.
Directories that start with `_` are skipped by every Parquet reader (pyarrow, Spark, DuckDB,
Polars), so the progress markers never read as data.

Columns are the click contract (schemas/click.v1.json) plus where the click came from:
event_id, user_id, item_id (strings), timestamp (int64, ms since the epoch, UTC), session_id and
context (a JSON string; both may be null), kafka_partition (int32), kafka_offset (int64); the
hive partition column `date` (YYYY-MM-DD) comes from the directory names.
"""

from __future__ import annotations

import re
from datetime import datetime, timezone

import pyarrow as pa

CLICK_SCHEMA = pa.schema([
    ("event_id", pa.string()),
    ("user_id", pa.string()),
    ("item_id", pa.string()),
    ("timestamp", pa.int64()),
    ("session_id", pa.string()),
    ("context", pa.string()),
    ("kafka_partition", pa.int32()),
    ("kafka_offset", pa.int64()),
])
PROGRESS_DIR = "_progress"
_DATA_FILE = re.compile(r"part-(\d{4})-(\d{20})-(\d{20})\.parquet$")


def event_date(timestamp_ms: int) -> str:
    """The UTC date an event belongs to, as its partition directory names it."""
    return datetime.fromtimestamp(timestamp_ms / 1000, tz=timezone.utc).strftime("%Y-%m-%d")


def data_file(root: str, date: str, partition: int, first_offset: int, last_offset: int) -> str:
    return f"{root}/date={date}/part-{partition:04d}-{first_offset:020d}-{last_offset:020d}.parquet"


def progress_file(root: str, partition: int) -> str:
    return f"{root}/{PROGRESS_DIR}/partition-{partition:04d}.json"


def offsets_of(path: str) -> tuple[int, int, int] | None:
    """(partition, first offset, last offset) from a data file's name; None for other files."""
    match = _DATA_FILE.search(path)
    return (int(match[1]), int(match[2]), int(match[3])) if match else None
