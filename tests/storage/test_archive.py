"""The click archive on the real broker and a real S3 server: every valid click lands once, in its
event date's directory, offsets are committed after the files, and a crash between writing and
committing (in-process and kill -9) neither loses nor duplicates a click."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from datetime import datetime, timezone

import fsspec
import pyarrow.dataset as ds
import pytest
from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition

from seqrec.pipeline.devtools.harness import produce_clicks, produce_raw
from seqrec.pipeline.serving.source import ClickEvent
from seqrec.pipeline.settings import ArchiveSettings, KafkaSettings
from seqrec.pipeline.storage.archive import ClickArchiver
from seqrec.pipeline.storage.archive_layout import offsets_of
from seqrec.pipeline.storage.click_window import TimeWindow, read_window

DAY_ONE = int(datetime(2026, 11, 30, tzinfo=timezone.utc).timestamp() * 1000)
DAY_TWO = DAY_ONE + 86_400_000
PARTITIONS = 2


def clicks_over_two_days(n: int, tag: str = "c") -> list[ClickEvent]:
    """n clicks of 20 users, the first half on DAY_ONE, the rest on DAY_TWO."""
    return [ClickEvent(f"{tag}-{i}", f"u{i % 20}", f"i{i % 37}", (DAY_ONE if i < n // 2 else DAY_TWO) + i * 1000)
            for i in range(n)]


@pytest.fixture
def clicks_topic(kafka_bootstrap: str) -> str:
    name = f"archive-{uuid.uuid4().hex[:8]}"
    admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    try:
        admin.create_topics({name: {"num_partitions": PARTITIONS, "replication_factor": 1}}, wait_for_metadata=True)
    finally:
        admin.close()
    return name


def archive_rows(url: str) -> list[dict]:
    """Every row of every data file, as written (no deduplication)."""
    fs, root = fsspec.core.url_to_fs(url)
    fs.invalidate_cache()  # s3fs keeps listings: the archiver writes beside the test
    return ds.dataset(root, filesystem=fs, format="parquet", partitioning="hive").to_table().to_pylist()


def run_until(archiver: ClickArchiver, consumed: int, timeout_s: float = 60.0) -> None:
    """Run `archiver` in a thread until it has consumed `consumed` messages, then stop it."""
    stop = threading.Event()
    failures: list[BaseException] = []

    def work() -> None:
        try:
            archiver.run(stop)
        except BaseException as exc:  # re-raised below, in the test's thread
            failures.append(exc)

    thread = threading.Thread(target=work)
    thread.start()
    deadline = time.monotonic() + timeout_s
    while archiver.stats.consumed < consumed and time.monotonic() < deadline and thread.is_alive():
        time.sleep(0.1)
    stop.set()
    thread.join(30)
    if failures:
        raise failures[0]
    assert archiver.stats.consumed >= consumed, f"consumed {archiver.stats.consumed} of {consumed} in {timeout_s} s"


def test_every_valid_click_lands_once_in_its_date_and_offsets_follow_the_files(
        kafka_bootstrap: str, clicks_topic: str, s3_bucket: str) -> None:
    clicks = clicks_over_two_days(300)
    produce_clicks(kafka_bootstrap, clicks_topic, clicks)
    produce_clicks(kafka_bootstrap, clicks_topic, clicks[:5])  # a producer that sent five clicks twice
    produce_raw(kafka_bootstrap, clicks_topic, [(b"u1", b"{not json"), (b"u2", b'{"event_id": "x", "user_id": "u2"}')])
    url, group = f"{s3_bucket}/clicks", f"g-{uuid.uuid4().hex[:6]}"
    archiver = ClickArchiver(ArchiveSettings(url=url, group_id=group, max_file_clicks=100, max_file_seconds=0.5),
                             KafkaSettings(bootstrap_servers=kafka_bootstrap, clicks_topic=clicks_topic))
    run_until(archiver, consumed=307)

    rows = archive_rows(url)
    assert archiver.stats.invalid == 2
    assert sorted(r["event_id"] for r in rows) == sorted([c.event_id for c in clicks] + [c.event_id for c in clicks[:5]])
    assert {r["date"] for r in rows} == {"2026-11-30", "2026-12-01"}
    for row in rows:
        expected = next(c for c in clicks if c.event_id == row["event_id"])
        assert (row["user_id"], row["item_id"], row["timestamp"]) == (expected.user_id, expected.item_id,
                                                                      expected.timestamp)
    fs, root = fsspec.core.url_to_fs(url)
    for path in fs.find(root):
        if path.endswith(".parquet"):
            partition, first, last = offsets_of(path)
            offsets = {r["kafka_offset"] for r in ds.dataset(path, filesystem=fs).to_table().to_pylist()}
            assert partition < PARTITIONS and first <= min(offsets) and max(offsets) <= last

    consumer = KafkaConsumer(bootstrap_servers=kafka_bootstrap, group_id=group, enable_auto_commit=False)
    try:
        tps = [TopicPartition(clicks_topic, p) for p in range(PARTITIONS)]
        end = consumer.end_offsets(tps)
        assert {tp: consumer.committed(tp) for tp in tps} == end
    finally:
        consumer.close()

    # A window reads only its dates, and a click sent twice once.
    second_day = read_window(url, TimeWindow(since_ms=DAY_TWO))
    assert sorted(c.event_id for c in second_day) == sorted(c.event_id for c in clicks[150:])
    everything = read_window(url, TimeWindow())
    assert len(everything) == len({c.event_id for c in everything}) == 300


class _Crash(Exception):
    pass


class CrashingAfterWrite(ClickArchiver):
    """Dies right after its second write and before that write's offsets are committed."""

    writes = 0

    def _write(self, partition, buffer) -> None:
        super()._write(partition, buffer)
        self.writes += 1
        if self.writes == 2:
            raise _Crash


def test_a_crash_between_writing_and_committing_writes_no_click_twice(
        kafka_bootstrap: str, clicks_topic: str, s3_bucket: str) -> None:
    clicks = clicks_over_two_days(400)
    produce_clicks(kafka_bootstrap, clicks_topic, clicks)
    url, group = f"{s3_bucket}/clicks", f"g-{uuid.uuid4().hex[:6]}"
    kafka = KafkaSettings(bootstrap_servers=kafka_bootstrap, clicks_topic=clicks_topic)
    with pytest.raises(_Crash):
        run_until(CrashingAfterWrite(ArchiveSettings(url=url, group_id=group, max_file_clicks=60), kafka), 400)
    fs, root = fsspec.core.url_to_fs(url)
    files_before_restart = set(fs.find(root))
    assert any(offsets_of(path) for path in files_before_restart)

    # The next archiver batches differently, yet redoes the unfinished flush under the same names.
    run_until(ClickArchiver(ArchiveSettings(url=url, group_id=group, max_file_clicks=1000, max_file_seconds=0.5),
                            kafka), consumed=1)
    rows = archive_rows(url)
    assert sorted(r["event_id"] for r in rows) == sorted(c.event_id for c in clicks)
    assert files_before_restart <= set(fs.find(root))  # replaced under the same names, not written beside


def test_kill_9_of_the_archiver_loses_and_duplicates_nothing(
        kafka_bootstrap: str, clicks_topic: str, s3_bucket: str, s3_server, tmp_path) -> None:
    url = f"{s3_bucket}/clicks"
    env = {**os.environ, **s3_server.env()}
    args = [sys.executable, "-m", "seqrec.pipeline.cli", "archive", "--url", url, "--topic", clicks_topic,
            "--bootstrap", kafka_bootstrap, "--group", f"g-{uuid.uuid4().hex[:6]}",
            "--max-file-clicks", "50", "--max-file-seconds", "0.3"]
    clicks = clicks_over_two_days(1200)
    fs, root = fsspec.core.url_to_fs(url)

    def data_files() -> list[str]:
        return [p for p in fs.find(root) if p.endswith(".parquet")] if fs.exists(root) else []

    first = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=open(tmp_path / "first.log", "wb"))
    try:
        produce_clicks(kafka_bootstrap, clicks_topic, clicks[:100])
        deadline = time.monotonic() + 60
        while not data_files() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert data_files(), (tmp_path / "first.log").read_text()[-2000:]
        for start in range(100, 600, 100):  # in bursts, so that it is killed while files close
            produce_clicks(kafka_bootstrap, clicks_topic, clicks[start:start + 100])
            time.sleep(0.15)
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait()

    produce_clicks(kafka_bootstrap, clicks_topic, clicks[600:])
    second = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=open(tmp_path / "second.log", "wb"))
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and len(archive_rows(url)) < len(clicks):
            time.sleep(0.5)
    finally:
        second.terminate()
        second.wait(30)
    ids = [r["event_id"] for r in archive_rows(url)]
    assert len(ids) == len(set(ids)), "a click was written twice"
    assert sorted(ids) == sorted(c.event_id for c in clicks), (tmp_path / "second.log").read_text()[-2000:]
