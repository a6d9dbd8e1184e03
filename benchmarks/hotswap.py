"""Hot-swap under load, and retraining wall time.

    python benchmarks/hotswap.py [--rate 300] [--seconds 40] [--retrain-data ../shared/data/ml-1m/ml-1m.txt.gz]

A worker follows a model store while clicks arrive at a steady rate; halfway through a new
version is published. Reported side by side from the same run: end-to-end latency (click sent
to recommendation received) in the steady state before the publish and in the 10 s after it,
and the time from publish to the first recommendation made by the new version. With
--retrain-data, also the wall time of one retraining run (gate + refit) on that dataset.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import threading
import time
from pathlib import Path

from kafka import KafkaConsumer, KafkaProducer

from seqrec.model.data import load_dataset, sequences_from_clicks, synthetic_clicks
from seqrec.model.train import TrainConfig, train
from seqrec.pipeline.evaluation.clicklog import clicks_from_rows, interleave_sequences
from seqrec.pipeline.devtools.harness import WorkerProcess
from seqrec.pipeline.devtools.kafka_local import free_port
from seqrec.pipeline.devtools.kafka_provider import BOOTSTRAP_ENV, provide_kafka
from seqrec.pipeline.kafka_security import open_client
from seqrec.pipeline.lifecycle.model_store import ModelStore
from seqrec.pipeline.lifecycle.retrain import retrain_once
from seqrec.pipeline.settings import load_settings
from seqrec.pipeline.serving.source import ClickEvent, encode_click


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(int(len(ordered) * q), len(ordered) - 1)] if ordered else float("nan")


def tiny_model(out: Path, seed: int) -> Path:
    data = sequences_from_clicks(synthetic_clicks(2000, 500, seed=1))
    return train(data, None, TrainConfig(epochs=3, progress=False, seed=seed), out, max_len=50, d_model=64).best_path


def swap_under_load(args: argparse.Namespace, tmp: Path) -> dict:
    v1_path, v2_path = tiny_model(tmp / "v1", 1), tiny_model(tmp / "v2", 2)
    store = ModelStore(tmp / "store")
    v1 = store.publish(v1_path)
    with provide_kafka(tmp / "kafka") as (bootstrap, source):
        # SEQREC_KAFKA__SECURITY__* describe an external cluster (the worker reads them too).
        security = load_settings().kafka.security if source == BOOTSTRAP_ENV else None
        app = f"bench{os.getpid()}"
        port = free_port()
        worker = WorkerProcess(
            ["--brokers", bootstrap, "--app-id", app, "--datadir", str(tmp / "w"), "--web-port", str(port),
             "--clicks-topic", f"{app}-clicks", "--recommendations-topic", f"{app}-recs",
             "--dead-letter-topic", f"{app}-dlq", "--partitions", "4", "--model-store", store.url,
             "--model-poll", "0.5", "--torch-threads", "1"],
            log_path=tmp / "worker.log", web_port=port).start()
        try:
            worker.wait_ready(120)
            sent: dict[str, float] = {}
            received: dict[str, tuple[float, str]] = {}
            stop = threading.Event()

            def consume() -> None:
                consumer = open_client(KafkaConsumer, bootstrap, security, group_id=None,
                                       auto_offset_reset="earliest")
                consumer.subscribe([f"{app}-recs"])
                while not stop.is_set():
                    for records in consumer.poll(timeout_ms=100).values():
                        now = time.time()
                        for r in records:
                            rec = json.loads(r.value)
                            received.setdefault(rec["event_id"], (now, rec["model_version"]))
                consumer.close()

            reader = threading.Thread(target=consume)
            reader.start()
            producer = open_client(KafkaProducer, bootstrap, security, linger_ms=1, acks=1, enable_idempotence=False)
            n = int(args.rate * args.seconds)
            start = time.time()
            published_at = None
            for i in range(n):
                due = start + i / args.rate
                if (pause := due - time.time()) > 0:
                    time.sleep(pause)
                if published_at is None and i >= n // 2:
                    published_at = time.time()
                    v2 = store.publish(v2_path)
                click = ClickEvent(f"e{i}", f"u{i % 1000}", f"i{i % 500}", int(time.time() * 1000))
                sent[click.event_id] = time.time()
                producer.send(f"{app}-clicks", key=click.user_id.encode(), value=encode_click(click))
            producer.flush()
            deadline = time.time() + 60
            while len(received) < n and time.time() < deadline:
                time.sleep(0.2)
            stop.set()
            reader.join()
        finally:
            worker.stop()
    latency = {e: (received[e][0] - t) * 1000 for e, t in sent.items() if e in received}
    steady = [ms for e, ms in latency.items() if published_at - 10 <= sent[e] < published_at]
    during = [ms for e, ms in latency.items() if published_at <= sent[e] < published_at + 10]
    first_new = min((t for t, v in received.values() if v == v2), default=float("nan"))
    return {
        "clicks": n, "answered": len(received), "rate_per_s": args.rate, "old": v1, "new": v2,
        "steady_p50_ms": percentile(steady, 0.5), "steady_p99_ms": percentile(steady, 0.99),
        "swap_p50_ms": percentile(during, 0.5), "swap_p99_ms": percentile(during, 0.99),
        "publish_to_first_new_s": first_new - published_at,
        "old_answers_after_first_new": sum(1 for t, v in received.values() if v == v1 and t > first_new),
    }


def retrain_wall_time(path: Path, tmp: Path, epochs: int) -> dict:
    dataset = load_dataset(path)
    clicks = list(clicks_from_rows(interleave_sequences(dataset.users, dataset.sequences)))
    store = ModelStore(tmp / "retrain-store")
    config = TrainConfig(epochs=epochs, patience=epochs, progress=False)
    first = retrain_once(clicks, store, train_config=config, model_config=None, work_dir=tmp / "r1")
    second = retrain_once(clicks, store, train_config=config, work_dir=tmp / "r2")
    return {"dataset": str(path), "clicks": len(clicks), "epochs": epochs,
            "first_run_s": first.seconds, "warm_started_run_s": second.seconds, "second": second.line()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", type=float, default=300.0, help="clicks per second")
    parser.add_argument("--seconds", type=float, default=40.0)
    parser.add_argument("--retrain-data", type=Path, default=None)
    parser.add_argument("--retrain-epochs", type=int, default=3)
    parser.add_argument("--skip-swap", action="store_true", help="only the retraining wall time")
    args = parser.parse_args()
    print(f"machine: {platform.node()} {platform.machine()}, {len(os.sched_getaffinity(0))} cores")
    with tempfile.TemporaryDirectory() as tmp:
        if not args.skip_swap:
            print(json.dumps(swap_under_load(args, Path(tmp)), indent=1))
        if args.retrain_data:
            print(json.dumps(retrain_wall_time(args.retrain_data, Path(tmp), args.retrain_epochs), indent=1))


if __name__ == "__main__":
    main()
