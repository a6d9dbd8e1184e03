"""`seqrec archive`: copies every valid click from the clicks topic into the click archive
(archive_layout.py), so that retraining can read months of behaviour that the topic's retention
has long dropped.

The archiver is a consumer group: start any number of instances and Kafka shares the topic's
partitions between them. Each partition's clicks are buffered and written as one file per event
date when the buffers hold `max_file_clicks` clicks or their oldest click has waited
`max_file_seconds`; a partition's offset is committed only after its files are written.

No click is written twice, even when an archiver dies between writing a file and committing its
offset (kill -9, a lost host): before writing, a flush records its offset range in the partition's
progress marker. The next owner of the partition resumes at the committed offset; when that is the
start of the recorded range, its first flush ends exactly where the recorded one ended, so it
writes the same files under the same names, which replace the earlier ones. Readers also drop
repeated event ids (a producer that sent a click twice), so a second guard stands behind the first.

Invalid clicks are skipped: the worker already sends them to the dead-letter topic with a reason.
"""

from __future__ import annotations

import io
import json
import logging
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.parquet as pq
from kafka import ConsumerRebalanceListener, KafkaConsumer, OffsetAndMetadata, TopicPartition

from seqrec.pipeline.errors import ConfigError
from seqrec.pipeline.kafka_security import open_client
from seqrec.pipeline.serving.source import ClickEvent, Rejection, SourceLimits, decode_click
from seqrec.pipeline.settings import ArchiveSettings, KafkaSettings
from seqrec.pipeline.storage.archive_layout import CLICK_SCHEMA, data_file, event_date, progress_file
from seqrec.pipeline.storage.location import put_object, resolve

log = logging.getLogger(__name__)

# An archive keeps history: a click is judged by its contract, not by how old it is now.
ARCHIVE_LIMITS = SourceLimits(min_timestamp_ms=0, max_future_skew_ms=10**15)


def parquet_bytes(clicks: list[tuple[ClickEvent, int, int]]) -> bytes:
    """One Parquet file of (click, partition, offset) rows in CLICK_SCHEMA."""
    columns: dict[str, list[Any]] = {name: [] for name in CLICK_SCHEMA.names}
    for click, partition, offset in clicks:
        columns["event_id"].append(click.event_id)
        columns["user_id"].append(click.user_id)
        columns["item_id"].append(click.item_id)
        columns["timestamp"].append(click.timestamp)
        columns["session_id"].append(click.session_id)
        columns["context"].append(None if click.context is None else orjson.dumps(click.context).decode())
        columns["kafka_partition"].append(partition)
        columns["kafka_offset"].append(offset)
    sink = io.BytesIO()
    pq.write_table(pa.table(columns, schema=CLICK_SCHEMA), sink, compression="zstd")
    return sink.getvalue()


@dataclass
class _Buffer:
    """What one partition consumed since its last flush."""

    first_offset: int
    last_offset: int
    opened_at: float
    clicks: list[tuple[ClickEvent, int, int]] = field(default_factory=list)
    replay_until: int | None = None  # redo a recorded flush: end exactly at this offset


@dataclass
class ArchiverStats:
    consumed: int = 0
    archived: int = 0
    invalid: int = 0
    files: int = 0


class ClickArchiver(ConsumerRebalanceListener):
    """Consumes `kafka.clicks_topic` in the consumer group `archive.group_id` and writes its valid
    clicks under `archive.url`."""

    def __init__(self, archive: ArchiveSettings, kafka: KafkaSettings) -> None:
        if not archive.url:
            raise ConfigError("no archive URL: pass --url or set SEQREC_ARCHIVE__URL")
        self.settings = archive
        self.kafka = kafka
        self.fs, self.root = resolve(archive.url)
        self.stats = ArchiverStats()
        self._buffers: dict[int, _Buffer] = {}
        self._recorded: dict[int, tuple[int, int]] = {}  # partition -> recorded (first, last) of a flush in flight
        self._consumer: KafkaConsumer | None = None

    # ---- the loop ----------------------------------------------------------------------------
    def run(self, stop: threading.Event | None = None) -> ArchiverStats:
        """Archive until `stop` is set; then write what is buffered and commit it."""
        stop = stop or threading.Event()
        self._consumer = open_client(
            KafkaConsumer, self.kafka.bootstrap_servers, self.kafka.security, group_id=self.settings.group_id,
            enable_auto_commit=False, auto_offset_reset="earliest", max_poll_records=5000,
            session_timeout_ms=int(self.kafka.session_timeout_s * 1000),
            heartbeat_interval_ms=int(self.kafka.heartbeat_interval_s * 1000))
        self._consumer.subscribe([self.kafka.clicks_topic], listener=self)
        try:
            while not stop.is_set():
                for tp, records in self._consumer.poll(timeout_ms=200).items():
                    for record in records:
                        self._take(tp.partition, record.offset, record.value, record.key)
                self._flush_due()
            self._flush(list(self._buffers))
        finally:
            self._consumer.close(autocommit=False)
        return self.stats

    def _take(self, partition: int, offset: int, value: bytes | None, key: bytes | None) -> None:
        buffer = self._buffers.get(partition)
        if buffer is not None and buffer.replay_until is not None and offset > buffer.replay_until:
            buffer.last_offset = buffer.replay_until  # its last record is gone (retention): same names all the same
            self._flush([partition])  # the recorded flush is redone; carry on with a new one
            buffer = None
        if buffer is None:
            buffer = self._buffers[partition] = _Buffer(offset, offset, time.monotonic())
            recorded = self._recorded.pop(partition, None)
            if recorded is not None and recorded[0] == offset:
                buffer.replay_until = recorded[1]
        buffer.last_offset = offset
        self.stats.consumed += 1
        click = decode_click(value, key, now_ms=0, limits=ARCHIVE_LIMITS, require_key=False)
        if isinstance(click, Rejection):
            self.stats.invalid += 1
        else:
            buffer.clicks.append((click, partition, offset))
        if buffer.replay_until is not None and offset >= buffer.replay_until:
            self._flush([partition])

    def _flush_due(self) -> None:
        now = time.monotonic()
        buffered = sum(len(b.clicks) for b in self._buffers.values())
        due = [p for p, b in self._buffers.items() if b.replay_until is None and (
            buffered >= self.settings.max_file_clicks or now - b.opened_at >= self.settings.max_file_seconds)]
        self._flush(due)

    # ---- writing -----------------------------------------------------------------------------
    def _flush(self, partitions: list[int]) -> None:
        """Write each partition's buffer (progress marker, then its files), then commit their offsets."""
        offsets: dict[TopicPartition, OffsetAndMetadata] = {}
        for partition in partitions:
            buffer = self._buffers.pop(partition, None)
            if buffer is None:
                continue
            if buffer.replay_until is not None and buffer.last_offset < buffer.replay_until:
                continue  # stopped halfway through redoing a recorded flush: the next owner redoes it whole
            self._write(partition, buffer)
            offsets[TopicPartition(self.kafka.clicks_topic, partition)] = OffsetAndMetadata(
                buffer.last_offset + 1, "", -1)
        if offsets and self._consumer is not None:
            self._consumer.commit(offsets)

    def _write(self, partition: int, buffer: _Buffer) -> None:
        first, last = buffer.first_offset, buffer.last_offset
        put_object(self.fs, progress_file(self.root, partition),
                   json.dumps({"first_offset": first, "last_offset": last}).encode())
        by_date: dict[str, list[tuple[ClickEvent, int, int]]] = defaultdict(list)
        for row in buffer.clicks:
            by_date[event_date(row[0].timestamp)].append(row)
        for date, rows in sorted(by_date.items()):
            put_object(self.fs, data_file(self.root, date, partition, first, last), parquet_bytes(rows))
            self.stats.files += 1
        self.stats.archived += len(buffer.clicks)
        log.info("archived partition %d offsets %d-%d: %d clicks in %d files",
                 partition, first, last, len(buffer.clicks), len(by_date))

    def _read_progress(self, partition: int) -> tuple[int, int] | None:
        path = progress_file(self.root, partition)
        try:
            recorded = json.loads(self.fs.cat_file(path))
        except FileNotFoundError:
            return None
        return int(recorded["first_offset"]), int(recorded["last_offset"])

    # ---- rebalances (called inside poll) -----------------------------------------------------
    def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        self._flush([tp.partition for tp in revoked])  # the next owner starts after what is written

    def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        for tp in assigned:
            recorded = self._read_progress(tp.partition)
            if recorded is not None:
                self._recorded[tp.partition] = recorded
