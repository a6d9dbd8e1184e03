"""Does retraining from the click archive scale with the window, not with the archive? And does
the archiver keep up with the stream?

    python benchmarks/retrain_scale.py [--sizes 1M 5M 20M] [--window-clicks 5M] [--archive-clicks 200k]

1. Writes synthetic archives of each size (Zipf items; a steady 100k clicks a day from 200k active
   users, a population that renews by 10k a day: 300k users in all for 1M clicks, 2.2M for 20M) in
   the archive's layout, with the archiver's own file writer.
2. For each archive, in a fresh process, runs retrain's data path on a fixed window (the newest
   --window-clicks clicks, or the whole archive when it is smaller): the archive read, the sort by
   time and the sequences and training tensors a retrain builds, and reports the process's peak RSS
   and seconds per million clicks. Training itself is left out: its memory is the model's and the
   batch's, the same whatever the archive holds.
3. Starts a local broker, produces --archive-clicks clicks to an 8-partition topic and times one
   `seqrec archive` process (ClickArchiver) draining it: clicks per second, to set beside the worker's
   saturated rate (docs/pipeline.md).

Prints the machine and the date; --out writes the figures as JSON (docs/results/scale/).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from seqrec.pipeline.storage.archive_layout import CLICK_SCHEMA, data_file, event_date

CLICKS_PER_DAY = 100_000
ACTIVE_USERS = 200_000
NEW_USERS_PER_DAY = 10_000
N_ITEMS = 50_000
FIRST_DAY_MS = int(datetime(2026, 1, 1, tzinfo=timezone.utc).timestamp() * 1000)
DAY_MS = 86_400_000


def count(text: str) -> int:
    """'5M' -> 5_000_000, '200k' -> 200_000, '1500' -> 1500."""
    scale = {"k": 1_000, "m": 1_000_000}.get(text[-1:].lower(), 1)
    return int(float(text[:-1] if scale > 1 else text) * scale)


def prefixed(prefix: str, numbers: np.ndarray) -> pa.Array:
    return pc.binary_join_element_wise(prefix, pc.cast(pa.array(numbers), pa.string()), "")


def write_synthetic_archive(root: Path, n_clicks: int, seed: int = 0) -> int:
    """n_clicks in days of CLICKS_PER_DAY; returns the number of days. Each day's clicks come from
    the ACTIVE_USERS users active that day, a population that renews by NEW_USERS_PER_DAY a day: a
    longer archive holds more users in all (300k for 1M clicks, 2.2M for 20M), as a real one does,
    while a day of traffic looks the same however far back the archive reaches."""
    rng = np.random.default_rng(seed)
    days = -(-n_clicks // CLICKS_PER_DAY)
    for day in range(days):
        n = min(CLICKS_PER_DAY, n_clicks - day * CLICKS_PER_DAY)
        first = day * CLICKS_PER_DAY
        offsets = np.arange(first, first + n, dtype=np.int64)
        items = np.minimum(rng.zipf(1.1, n), N_ITEMS)
        timestamps = FIRST_DAY_MS + day * DAY_MS + np.sort(rng.integers(0, DAY_MS, n))
        table = pa.table({
            "event_id": prefixed("e", offsets), "user_id": prefixed("u", day * NEW_USERS_PER_DAY + rng.integers(0, ACTIVE_USERS, n)),
            "item_id": prefixed("i", items), "timestamp": pa.array(timestamps, pa.int64()),
            "session_id": pa.nulls(n, pa.string()), "context": pa.nulls(n, pa.string()),
            "kafka_partition": pa.array(np.zeros(n, np.int32)), "kafka_offset": pa.array(offsets)}, schema=CLICK_SCHEMA)
        path = Path(data_file(str(root), event_date(int(timestamps[0])), 0, first, first + n - 1))
        path.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(table, path, compression="zstd")
    return days


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def measure(url: str, since_ms: int, until_ms: int) -> dict:
    """Retrain's data path on one window, in this (fresh) process."""
    from seqrec.model.data import leave_one_out
    from seqrec.model.train import training_tensors
    from seqrec.model.data import ItemMap
    from seqrec.pipeline.lifecycle.retrain import clicks_to_dataset
    from seqrec.pipeline.storage.click_window import TimeWindow, read_window

    baseline = peak_rss_mib()
    started = time.perf_counter()
    clicks = read_window(url, TimeWindow(since_ms, until_ms))
    read_s = time.perf_counter() - started
    clicks.sort(key=lambda c: c.timestamp)
    dataset = clicks_to_dataset(clicks)
    split = leave_one_out(dataset, ItemMap.from_items(dataset.item_ids()))
    training_tensors(split, 50)
    total_s = time.perf_counter() - started
    return {"clicks": len(clicks), "users": len(dataset.users), "read_s": round(read_s, 1), "total_s": round(total_s, 1),
            "s_per_million": round(total_s / len(clicks) * 1e6, 2), "peak_rss_mib": round(peak_rss_mib()),
            "rss_before_mib": round(baseline)}


def archive_throughput(n_clicks: int, work: Path) -> dict:
    """One archiver draining a topic that already holds n_clicks valid clicks."""
    from kafka import KafkaAdminClient

    from seqrec.pipeline.devtools.harness import produce_raw
    from seqrec.pipeline.devtools.kafka_provider import provide_kafka
    from seqrec.pipeline.settings import ArchiveSettings, KafkaSettings
    from seqrec.pipeline.storage.archive import ClickArchiver

    with provide_kafka(work / "kafka") as (bootstrap, _):
        topic = f"clicks-{uuid.uuid4().hex[:6]}"
        admin = KafkaAdminClient(bootstrap_servers=bootstrap)
        admin.create_topics({topic: {"num_partitions": 8, "replication_factor": 1}}, wait_for_metadata=True)
        admin.close()
        rng = np.random.default_rng(1)
        users = rng.integers(0, 20_000, n_clicks)
        items = np.minimum(rng.zipf(1.1, n_clicks), N_ITEMS)
        produce_raw(bootstrap, topic, ((f"u{u}".encode(), json.dumps(
            {"event_id": f"e{i}", "user_id": f"u{u}", "item_id": f"i{item}", "timestamp": FIRST_DAY_MS + i}).encode())
            for i, (u, item) in enumerate(zip(users, items))))
        archiver = ClickArchiver(ArchiveSettings(url=str(work / "archive"), group_id="bench"),
                                 KafkaSettings(bootstrap_servers=bootstrap, clicks_topic=topic))
        stop = threading.Event()
        thread = threading.Thread(target=archiver.run, args=(stop,))
        started = time.perf_counter()
        thread.start()
        while archiver.stats.consumed < n_clicks and thread.is_alive():
            time.sleep(0.05)
        stop.set()
        thread.join()
        seconds = time.perf_counter() - started
    return {"clicks": archiver.stats.archived, "files": archiver.stats.files, "seconds": round(seconds, 1),
            "clicks_per_s": round(archiver.stats.archived / seconds)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", nargs="+", default=["1M", "5M", "20M"], help="archive sizes in clicks")
    parser.add_argument("--window-clicks", default="5M", help="clicks in the window retrain reads")
    parser.add_argument("--archive-clicks", default="200k", help="clicks the archiver drains (0: skip)")
    parser.add_argument("--work", type=Path, default=None, help="where the archives go (default: a temp dir)")
    parser.add_argument("--out", type=Path, default=None, help="write the figures here as JSON")
    parser.add_argument("--measure", nargs=3, metavar=("URL", "SINCE_MS", "UNTIL_MS"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:  # the child: one window, one process, so that its peak RSS is its own
        url, since_ms, until_ms = args.measure
        print(json.dumps(measure(url, int(since_ms), int(until_ms))))
        return

    print(f"{platform.node()} {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC, python {platform.python_version()}", flush=True)
    window_clicks = count(args.window_clicks)
    results: dict = {"date": f"{datetime.now(timezone.utc):%Y-%m-%d}", "machine": platform.node(),
                     "cores": os.cpu_count(), "window_clicks": window_clicks, "retrain": [], "archiver": None}
    with tempfile.TemporaryDirectory(prefix="retrain-scale-", dir=args.work) as tmp:
        for size in args.sizes:
            n = count(size)
            root = Path(tmp) / f"archive-{size}"
            started = time.perf_counter()
            days = write_synthetic_archive(root, n)
            print(f"archive of {n:,} clicks ({days} days) written in {time.perf_counter() - started:.0f} s", flush=True)
            until_ms = FIRST_DAY_MS + days * DAY_MS
            since_ms = until_ms - -(-min(window_clicks, n) // CLICKS_PER_DAY) * DAY_MS
            child = subprocess.run([sys.executable, __file__, "--measure", str(root), str(since_ms), str(until_ms)],
                                   capture_output=True, text=True, check=True)
            row = {"archive_clicks": n, **json.loads(child.stdout.strip().splitlines()[-1])}
            results["retrain"].append(row)
            print(f"  window of {row['clicks']:,} clicks of {row['users']:,} users: peak RSS {row['peak_rss_mib']:,} MiB "
                  f"({row['rss_before_mib']} before reading), {row['s_per_million']} s per million clicks", flush=True)
        if count(args.archive_clicks):
            results["archiver"] = archive_throughput(count(args.archive_clicks), Path(tmp))
            a = results["archiver"]
            print(f"archiver: {a['clicks']:,} clicks in {a['files']} files in {a['seconds']} s = {a['clicks_per_s']:,}/s")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=2) + "\n")
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
