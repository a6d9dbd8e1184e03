"""Pipeline throughput: a fixed synthetic click stream through the real broker and `seqrec
worker`s (--workers of them in one consumer group), against the bare batched model forward on
the same histories.

For each attention kind, one group of workers serves these runs one after another (each run's
worker figures are the difference of their /metrics before and after it):
  * saturate: all clicks produced as fast as possible while the workers run; events/s is
    clicks / (last answer received - first click sent); with several workers, each one's share
    (`per_worker`);
  * paced: clicks produced at --rate events/s, each click at its own time; end-to-end latency = click sent → its answer
    received by a consumer (p50/p99), the figure the latency goal is about; a second --rate
    and more each add a paced run (`more_paced`);
  * stages: the workers' `seqrec_stage_seconds{stage}` histograms over the run: p50/p99 per
    stage and each stage's share of the mean end-to-end time; what is left over is outside the
    workers (the answer's trip to this script's consumer);
  * forward: `Recommender.recommend` alone on the same kind of histories at the workers' mean
    batch size and at fixed sizes, so the pipeline's cost is a ratio.

The models are untrained (seeded random weights): the cost of a forward pass does not depend
on the weights. Results print as a table and go to --out as JSON. Not a test.

    python benchmarks/pipeline_throughput.py                       # 100,000 clicks, 10,000 users
    python benchmarks/pipeline_throughput.py --clicks 20000 --users 2000 --kinds softmax
    python benchmarks/pipeline_throughput.py --workers 2 --rate 1000 5000 --kinds softmax
    python benchmarks/pipeline_throughput.py --forward-only --device cuda   # GPU machine
    git worktree add /tmp/before <commit>
    python benchmarks/pipeline_throughput.py --kinds softmax --rate 1000 --baseline /tmp/before
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import os
import platform
import random
import sys
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Iterator

import torch

from seqrec.model.attention import attention_kinds
from seqrec.model.checkpoint import save_checkpoint
from seqrec.model.config import ModelConfig
from seqrec.model.data import ItemMap
from seqrec.model.inference import Recommender
from seqrec.model.sasrec import SASRec
from seqrec.pipeline.devtools.harness import WorkerProcess, make_producer
from seqrec.pipeline.devtools.kafka_local import free_port
from seqrec.pipeline.kafka_security import client_config, open_client
from seqrec.pipeline.settings import KafkaSecuritySettings, load_settings
from seqrec.pipeline.serving.source import ClickEvent, encode_click
from seqrec.pipeline.serving.telemetry import STAGES


def synthetic_stream(n: int, users: int, items: int, seed: int = 0) -> list[ClickEvent]:
    """n clicks, users uniform, items Zipf-like; event time = now + index ms."""
    rng = random.Random(seed)
    now = int(time.time() * 1000)
    return [
        ClickEvent(f"e{j}", f"u{rng.randrange(users)}", f"i{int(rng.paretovariate(1.1)) % items}", now + j)
        for j in range(n)
    ]


def histories_of(stream: list[ClickEvent], history_len: int) -> list[list[str]]:
    """Each click's history as the worker sees it (its user's last items, this click included)."""
    seqs: dict[str, list[str]] = {}
    out = []
    for c in stream:
        seq = seqs.setdefault(c.user_id, [])
        seq.append(c.item_id)
        del seq[:-history_len]
        out.append(list(seq))
    return out


def make_checkpoint(kind: str, items: int, max_len: int, out: Path) -> Path:
    torch.manual_seed(0)
    model = SASRec(ModelConfig(n_items=items, max_len=max_len, attention=kind)).eval()
    path = out / f"{kind}.pt"
    save_checkpoint(path, model, ItemMap.from_items(f"i{i}" for i in range(items)),
                    data_fingerprint="synthetic", metrics={})
    return path


def bare_forward(ckpt: Path, histories: list[list[str]], sizes: list[int], device: str | None,
                 threads: int, seconds: float = 2.0) -> dict[int, dict[str, float]]:
    """events/s and ms per batch of `Recommender.recommend` alone, per batch size."""
    torch.set_num_threads(threads)
    rec = Recommender.from_checkpoint(ckpt, device=device)
    rng = random.Random(1)
    out = {}
    for size in sizes:
        batches = [rng.sample(histories, size) for _ in range(8)]
        rec.recommend(batches[0], k=10)  # warm-up
        n, started = 0, time.perf_counter()
        while time.perf_counter() - started < seconds:
            rec.recommend(batches[n % len(batches)], k=10)
            n += 1
        if rec.device.type == "cuda":
            torch.cuda.synchronize()
        elapsed = time.perf_counter() - started
        out[size] = {"events_per_s": n * size / elapsed, "ms_per_batch": 1000 * elapsed / n}
    return out


class AnswerClock(threading.Thread):
    """Consumes the recommendations topic and notes when each event_id was answered (`first`:
    the first time; `times`: every time, so duplicates show; `produced`: each answer's
    `produced_at`, equal for a record that a producer's retry wrote twice). From the topic's
    start, or from `start` ({partition: offset}, e.g. `end_offsets` before a run), so that a
    run on workers that served earlier runs reads only its own answers."""

    def __init__(self, bootstrap: str, topic: str, security: KafkaSecuritySettings | None = None,
                 start: dict[int, int] | None = None) -> None:
        super().__init__(daemon=True)
        from kafka import KafkaConsumer, TopicPartition

        self.consumer = open_client(KafkaConsumer, bootstrap, security, auto_offset_reset="earliest",
                                    enable_auto_commit=False, group_id=None, fetch_max_wait_ms=5,
                                    isolation_level="read_committed")
        if start is None:
            self.consumer.subscribe([topic])
        else:
            self.consumer.assign([TopicPartition(topic, p) for p in start])
            for p, offset in start.items():
                self.consumer.seek(TopicPartition(topic, p), offset)
        self.first: dict[str, float] = {}
        self.times: dict[str, list[float]] = {}
        self.produced: dict[str, list[int]] = {}
        self.total = 0
        self.stopping = threading.Event()

    def run(self) -> None:
        while not self.stopping.is_set():
            for messages in self.consumer.poll(timeout_ms=50).values():
                now = time.time()
                for m in messages:
                    self.note(m.value, now)
        self.consumer.close()

    def note(self, value: bytes, now: float) -> None:
        self.total += 1
        answer = json.loads(value)
        event_id = answer["event_id"]
        self.first.setdefault(event_id, now)
        self.times.setdefault(event_id, []).append(now)
        self.produced.setdefault(event_id, []).append(answer["produced_at"])


class AioAnswerClock(AnswerClock):
    """The same clock on another client (aiokafka, in its own event loop and thread), to check
    once that the latency measured is the system's and not the kafka-python consumer's."""

    def __init__(self, bootstrap: str, topic: str, security: KafkaSecuritySettings | None = None,
                 start: dict[int, int] | None = None) -> None:
        threading.Thread.__init__(self, daemon=True)
        self.bootstrap, self.topic, self.security, self.start_at = bootstrap, topic, security, start
        self.first, self.times, self.produced = {}, {}, {}
        self.total = 0
        self.stopping = threading.Event()
        self.subscribed = threading.Event()

    def run(self) -> None:
        asyncio.run(self._consume())

    async def _consume(self) -> None:
        from aiokafka import AIOKafkaConsumer, TopicPartition

        # Not open_client: it adds kafka-python's reconnect_backoff_max_ms, which aiokafka refuses.
        consumer = AIOKafkaConsumer(bootstrap_servers=self.bootstrap, **client_config(self.security),
                                    auto_offset_reset="earliest", enable_auto_commit=False, group_id=None,
                                    fetch_max_wait_ms=5, isolation_level="read_committed")
        if self.start_at is None:
            consumer.subscribe([self.topic])
        else:
            consumer.assign([TopicPartition(self.topic, p) for p in self.start_at])
        await consumer.start()
        for p, offset in (self.start_at or {}).items():
            consumer.seek(TopicPartition(self.topic, p), offset)
        self.subscribed.set()
        try:
            while not self.stopping.is_set():
                for messages in (await consumer.getmany(timeout_ms=50)).values():
                    now = time.time()
                    for m in messages:
                        self.note(m.value, now)
        finally:
            await consumer.stop()


def produce(bootstrap: str, topic: str, stream: list[ClickEvent], rate: float | None,
            security: KafkaSecuritySettings | None = None) -> dict[str, float]:
    """Send the stream (paced at `rate` events/s when given); return send time per event_id."""
    producer = make_producer(bootstrap, security, linger_ms=2 if rate else 20, batch_size=256 * 1024)
    sent: dict[str, float] = {}
    payloads = [(c.event_id, c.user_id.encode(), encode_click(c)) for c in stream]
    started = time.time()
    for j, (event_id, key, value) in enumerate(payloads):
        # Paced per click: sleeping only every 50 clicks sent bursts of 50, and each click's wait
        # for its burst-mates showed up as the worker's consume and batch_wait stages.
        ahead = started + j / rate - time.time() if rate else 0.0
        if ahead > 0.0002:
            time.sleep(ahead)
        sent[event_id] = time.time()
        producer.send(topic, key=key, value=value)
    producer.flush()
    producer.close()
    return sent


def checkout_packages(code: Path, workdir: Path) -> Path:
    """A folder for PYTHONPATH whose `seqrec/{model,pipeline,schemas}` link to checkout `code`'s
    folders. PYTHONPATH=code itself holds no `seqrec` package, so the worker would import the
    installed (editable) seqrec instead: not the baseline at all."""
    root = workdir / f"packages-{code.resolve().name}"
    package = root / "seqrec"
    package.mkdir(parents=True, exist_ok=True)
    for name in ("model", "pipeline", "schemas"):
        link = package / name
        if not link.exists():
            link.symlink_to(code.resolve() / name, target_is_directory=True)
    return root


def add_worker_arguments(parser: argparse.ArgumentParser) -> None:
    """--inference, --guarantee and --commit-interval, which `start_worker` passes on to this
    checkout's workers."""
    parser.add_argument("--inference", choices=["thread", "process"], default="thread",
                        help="where this checkout's worker runs the model (serving.inference)")
    parser.add_argument("--guarantee", choices=["at_least_once", "exactly_once"], default="at_least_once",
                        help="the workers' serving.guarantee (answers are read with read_committed either way)")
    parser.add_argument("--commit-interval", type=float, default=1.0,
                        help="the workers' kafka.commit_interval_s (under exactly_once: how often answers become visible)")


def start_worker(bootstrap: str, ckpt: Path, app: str, args: argparse.Namespace, workdir: Path,
                 code: Path | None = None, name: str | None = None) -> WorkerProcess:
    """`seqrec worker` for app id `app`, reading `<app>-clicks`, answering to `<app>-recs`; with
    `code`, the worker imports the project from that checkout instead (a baseline to compare).
    `name` (default: the app id) names its data directory and log, one per worker of a group."""
    port = free_port()
    name = name or app
    return WorkerProcess([
        "--checkpoint", str(ckpt), "--brokers", bootstrap, "--app-id", app,
        "--datadir", str(workdir / name), "--web-port", str(port),
        "--clicks-topic", f"{app}-clicks", "--recommendations-topic", f"{app}-recs",
        "--dead-letter-topic", f"{app}-dlq", "--partitions", str(args.partitions),
        "--max-batch", str(args.max_batch), "--max-wait-ms", str(args.max_wait_ms),
        "--history-len", str(args.history_len), "--standby-replicas", "0",
        "--session-timeout", "6", "--heartbeat-interval", "1",
        "--torch-threads", str(args.torch_threads), "--log-level", "warning",
        "--commit-interval", str(args.commit_interval),
        # a baseline runs its own defaults
        *(["--inference", args.inference, "--guarantee", args.guarantee] if code is None else []),
    ], log_path=workdir / f"{name}.log", web_port=port,
        env={"PYTHONPATH": str(checkout_packages(code, workdir))} if code is not None else None).start()


def create_log_append_time_clicks(bootstrap: str, topic: str, args: argparse.Namespace) -> None:
    """The clicks topic stamped by the broker on append (not by the producer), so the worker's
    "consume" stage starts at the broker and leaves out this script's producer client."""
    from kafka.admin import KafkaAdminClient, NewTopic

    admin = open_client(KafkaAdminClient, bootstrap, args.security)
    try:
        admin.create_topics([NewTopic(topic, args.partitions, 1,
                                      topic_configs={"message.timestamp.type": "LogAppendTime"})])
    finally:
        admin.close()


def end_offsets(bootstrap: str, topic: str, security: KafkaSecuritySettings | None) -> dict[int, int]:
    """{partition: end offset} of `topic` now."""
    from kafka import KafkaConsumer, TopicPartition

    consumer = open_client(KafkaConsumer, bootstrap, security, enable_auto_commit=False, group_id=None)
    try:
        tps = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
        if not tps:
            raise RuntimeError(f"topic {topic} has no partitions (the workers create it before /ready)")
        return {tp.partition: offset for tp, offset in consumer.end_offsets(tps).items()}
    finally:
        consumer.close()


@dataclasses.dataclass
class WorkerGroup:
    """`n` workers of one app id: one consumer group on one clicks topic, serving run after run."""

    bootstrap: str
    app: str
    workers: list[WorkerProcess]

    @property
    def clicks_topic(self) -> str:
        return f"{self.app}-clicks"

    @property
    def recs_topic(self) -> str:
        return f"{self.app}-recs"


@contextlib.contextmanager
def worker_group(bootstrap: str, ckpt: Path, n: int, args: argparse.Namespace, workdir: Path,
                 code: Path | None = None) -> Iterator[WorkerGroup]:
    """Start `n` workers (from checkout `code`, default this one) at once, wait until they
    hold every clicks partition between them, and stop them all at the end."""
    app = f"bench{uuid.uuid4().hex[:6]}"
    if args.log_append_time:
        create_log_append_time_clicks(bootstrap, f"{app}-clicks", args)
    workers = [start_worker(bootstrap, ckpt, app, args, workdir, code=code, name=f"{app}-{i}" if n > 1 else None)
               for i in range(n)]
    try:
        for worker in workers:
            worker.wait_ready(timeout_s=120)
        if n > 1:
            wait_balanced(workers, args.partitions)
        yield WorkerGroup(bootstrap, app, workers)
    finally:
        with ThreadPoolExecutor(len(workers)) as pool:  # one at a time, each stop would move partitions
            list(pool.map(WorkerProcess.stop, workers))


def wait_balanced(workers: list[WorkerProcess], partitions: int, timeout_s: float = 120.0) -> None:
    """Until each clicks partition is held by exactly one ready worker: a group still
    rebalancing after the last worker joined would pause in the middle of a run."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        held: list[int] = []
        for worker in workers:
            status, body = worker.get("/ready")
            held += json.loads(body)["partitions"] if status == 200 else [-1]
        if sorted(held) == list(range(partitions)):
            return
        time.sleep(0.3)
    raise TimeoutError(f"{len(workers)} workers did not share the {partitions} partitions within {timeout_s:.0f} s")


def scrape(worker: WorkerProcess) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """A worker's /metrics as {(sample name, sorted labels): value}."""
    from prometheus_client.parser import text_string_to_metric_families

    _, exposition = worker.get("/metrics")
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(exposition.decode()) for sample in family.samples}


def difference(after: dict[Any, float], before: dict[Any, float]) -> dict[Any, float]:
    """Counters and histograms over one run of workers that served earlier runs too."""
    return {key: value - before.get(key, 0.0) for key, value in after.items()}


def total(samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str) -> float:
    """Sum of a sample name's values over all labels."""
    return sum(value for (sample, _), value in samples.items() if sample == name)


def run_pipeline(group: WorkerGroup, stream: list[ClickEvent], rate: float | None,
                 args: argparse.Namespace) -> dict[str, Any]:
    """The group's workers serving `stream`, paced at `rate` (as fast as it goes when None)."""
    tag = uuid.uuid4().hex[:4]  # event ids unique to this run: the same workers serve several
    stream = [dataclasses.replace(c, event_id=f"{tag}{c.event_id}") for c in stream]
    before = [scrape(w) for w in group.workers]
    start = end_offsets(group.bootstrap, group.recs_topic, args.security)
    clock = AnswerClock(group.bootstrap, group.recs_topic, args.security, start=start)
    clocks = [clock, AioAnswerClock(group.bootstrap, group.recs_topic, args.security, start=start)] \
        if args.cross_check and rate else [clock]
    for c in clocks:
        c.start()
    if len(clocks) > 1:
        clocks[1].subscribed.wait(30)
    sent = produce(group.bootstrap, group.clicks_topic, stream, rate, args.security)
    deadline = time.time() + args.timeout
    while any(len(c.first) < len(stream) for c in clocks) and time.time() < deadline:
        time.sleep(0.1)
    for c in clocks:
        c.stopping.set()
        c.join()
    answered = len(clock.first)
    last = max(clock.first.values()) if clock.first else float("nan")
    elapsed = last - min(sent.values())
    lat = latencies_ms(clock, sent)
    each = [difference(scrape(w), b) for w, b in zip(group.workers, before)]
    m = {key: sum(d.get(key, 0.0) for d in each) for key in set().union(*each)}
    run = {
        "clicks": len(stream),
        "answered": answered,
        "events_per_s": answered / elapsed if answered else 0.0,
        "offered_rate": rate,
        **quantiles(lat),
        "mean_ms": sum(lat) / len(lat) if lat else None,
        # the same answers timed by a second, aiokafka consumer (--cross-check)
        "cross_check": {"client": "aiokafka", "answered": len(clocks[1].first),
                        **quantiles(latencies_ms(clocks[1], sent))} if len(clocks) > 1 else None,
        "stages": stage_breakdown(m, answered),
        **worker_figures(m),
        # the click's Kafka timestamp (set by the producer) → answer handed to the worker's producer
        "kafka_to_answer_ms": 1000 * total(m, "seqrec_end_to_end_seconds_sum") / max(total(m, "seqrec_end_to_end_seconds_count"), 1),
    }
    if len(group.workers) > 1:
        run["per_worker"] = [{"clicks": total(d, "seqrec_batch_size_sum"),
                              "events_per_s": total(d, "seqrec_batch_size_sum") / elapsed if answered else 0.0,
                              "mean_batch": worker_figures(d)["mean_batch"]} for d in each]
    return run


def worker_figures(m: dict[tuple[str, tuple[tuple[str, str], ...]], float]) -> dict[str, float]:
    """Mean batch, ms per batch of inference and the worker's own mean latency, from its histograms."""
    def mean(name: str, scale: float = 1.0) -> float:
        return scale * total(m, f"{name}_sum") / max(total(m, f"{name}_count"), 1)

    return {"mean_batch": mean("seqrec_batch_size"),
            "inference_ms_per_batch": mean("seqrec_inference_seconds", 1000),
            "worker_latency_ms": mean("seqrec_worker_latency_seconds", 1000)}


def mean_of_runs(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    """Two runs of the same paced stream: `a` with its numeric figures (and its stages') replaced by
    the mean of both; `runs` keeps both originals."""
    def mean(x: Any, y: Any) -> Any:
        if isinstance(x, dict) and isinstance(y, dict):
            return {k: mean(x[k], y.get(k)) for k in x}
        if isinstance(x, (int, float)) and isinstance(y, (int, float)):
            return (x + y) / 2
        return x
    return {**mean(a, b), "runs": [a, b]}


def latencies_ms(clock: AnswerClock, sent: dict[str, float]) -> list[float]:
    """Sorted send → first answer received, per click, in ms."""
    return sorted(1000 * (clock.first[e] - sent[e]) for e in clock.first if e in sent)


def quantiles(lat: list[float]) -> dict[str, float | None]:
    """p50 and p99 of sorted latencies."""
    return {"p50_ms": lat[len(lat) // 2] if lat else None,
            "p99_ms": lat[min(len(lat) - 1, int(len(lat) * 0.99))] if lat else None}


def histogram_quantile(q: float, buckets: list[tuple[float, float]]) -> float | None:
    """Prometheus' `histogram_quantile` on one histogram's cumulative (upper bound, count)
    buckets: linear inside the bucket that holds the q-th observation."""
    total = buckets[-1][1] if buckets else 0.0
    if total == 0:
        return None
    rank = q * total
    lower, below = 0.0, 0.0
    for upper, count in buckets:
        if count >= rank:
            if upper == float("inf"):
                return lower  # beyond the last finite bound: all that is known
            return lower + (upper - lower) * (rank - below) / max(count - below, 1e-12)
        lower, below = upper, count
    return lower


def stage_breakdown(m: dict[tuple[str, tuple[tuple[str, str], ...]], float],
                    clicks: int) -> dict[str, dict[str, float | None]]:
    """Per stage from the workers' samples over a run (`scrape`, `difference`): p50/p99 (ms, over
    its observations: clicks or batches) and the mean ms a click spent in it
    (`seqrec_stage_click_seconds_total` / clicks)."""
    buckets: dict[str, list[tuple[float, float]]] = {s: [] for s in STAGES}
    click_seconds: dict[str, float] = {}
    for (name, labels), value in m.items():
        label = dict(labels)
        if name == "seqrec_stage_seconds_bucket":
            buckets[label["stage"]].append((float(label["le"]), value))
        elif name == "seqrec_stage_click_seconds_total":
            click_seconds[label["stage"]] = value
    out = {}
    for stage in STAGES:
        b = sorted(buckets[stage])
        p50, p99 = histogram_quantile(0.5, b), histogram_quantile(0.99, b)
        out[stage] = {
            "p50_ms": None if p50 is None else 1000 * p50,
            "p99_ms": None if p99 is None else 1000 * p99,
            "mean_per_click_ms": 1000 * click_seconds.get(stage, 0.0) / max(clicks, 1),
        }
    return out


@contextlib.contextmanager
def broker(bootstrap: str | None, workdir: Path) -> Iterator[str]:
    if bootstrap:
        yield bootstrap
        return
    from seqrec.pipeline.devtools.kafka_provider import provide_kafka

    with provide_kafka(workdir / "kafka") as (address, _source):
        yield address


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--clicks", type=int, default=100_000)
    p.add_argument("--users", type=int, default=10_000)
    p.add_argument("--items", type=int, default=5_000)
    p.add_argument("--kinds", nargs="+", default=attention_kinds())
    p.add_argument("--rate", type=float, nargs="+", default=[5000.0],
                   help="offered events/s of the paced run (`paced`); more rates: one more paced run each "
                        "(`more_paced`), on the same workers")
    p.add_argument("--workers", type=int, default=1,
                   help="workers in the one consumer group (each with its own RocksDB and web port)")
    p.add_argument("--paced-clicks", type=int, default=30_000)
    p.add_argument("--partitions", type=int, default=8)
    p.add_argument("--max-batch", type=int, default=256)
    p.add_argument("--max-wait-ms", type=float, default=5.0)
    p.add_argument("--history-len", type=int, default=50)
    p.add_argument("--torch-threads", type=int, default=1)
    add_worker_arguments(p)
    p.add_argument("--sizes", type=int, nargs="+", default=[1, 16, 64, 256])
    p.add_argument("--forward-seconds", type=float, default=2.0, help="time spent on each bare forward size")
    p.add_argument("--device", default=None, help="device of the bare forward (default: cuda if any)")
    p.add_argument("--forward-only", action="store_true", help="skip the broker: bare forward only")
    p.add_argument("--bootstrap", default=None,
                   help="use this Kafka instead of starting one (security from SEQREC_KAFKA__SECURITY__*)")
    p.add_argument("--log-append-time", action="store_true",
                   help="clicks topic timestamped by the broker: the consume stage starts there")
    p.add_argument("--timeout", type=float, default=900.0, help="seconds to wait for all answers")
    p.add_argument("--cross-check", action="store_true",
                   help="time the paced run's answers with a second consumer on another client (aiokafka)")
    p.add_argument("--warmup", type=int, default=20_000,
                   help="clicks of an unmeasured saturated run first, to warm the broker up (0: none)")
    p.add_argument("--baseline", type=Path, default=None,
                   help="another checkout (e.g. a git worktree of an older commit): its worker runs the same "
                        "saturated and paced streams after this one's, in the same run")
    p.add_argument("--out", type=Path, default=None)
    args = p.parse_args(argv)
    # The workers read the same variables; a broker started here is PLAINTEXT.
    args.security = load_settings().kafka.security if args.bootstrap else None

    stream = synthetic_stream(args.clicks, args.users, args.items)
    histories = histories_of(stream, args.history_len)
    results: dict[str, Any] = {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "machine": f"{platform.machine()} {torch.get_num_threads()} torch threads available, "
                   f"{platform.processor() or platform.platform()}",
        "argv": sys.argv[1:] if argv is None else argv,
        "load_average_start": os.getloadavg(),  # other processes share the CPUs
        "workers": args.workers,
        "kinds": {},
    }
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        with (contextlib.nullcontext(None) if args.forward_only else broker(args.bootstrap, work)) as address:
            for i, kind in enumerate(args.kinds):
                ckpt = make_checkpoint(kind, args.items, args.history_len, work)
                r: dict[str, Any] = {} if args.forward_only else \
                    pipeline_runs(address, ckpt, stream, args, work, warmup=args.warmup if i == 0 else 0)
                sizes = sorted(set(args.sizes) | ({max(1, round(r["saturate"]["mean_batch"]))} if r else set()))
                r["forward"] = bare_forward(ckpt, histories, sizes, args.device, args.torch_threads,
                                            args.forward_seconds)
                results["kinds"][kind] = r
                print(json.dumps({kind: r}, indent=1), flush=True)
                if args.out:  # each kind as it ends: a run cut short keeps the kinds before it
                    args.out.write_text(json.dumps(results, indent=1))
    results["load_average_end"] = os.getloadavg()
    print_table(results)
    if args.out:
        args.out.write_text(json.dumps(results, indent=1))
    return 0


def pipeline_runs(address: str, ckpt: Path, stream: list[ClickEvent], args: argparse.Namespace, work: Path,
                  warmup: int) -> dict[str, Any]:
    """One kind's runs, each on one group of --workers workers that serves them one after another:
    `warmup` clicks unmeasured, then saturated, then paced at each --rate."""
    paced = synthetic_stream(args.paced_clicks, args.users, args.items, seed=2)
    r: dict[str, Any] = {}
    with worker_group(address, ckpt, args.workers, args, work) as group:
        if warmup:
            # A fresh broker (its JVM) is slow for the first minute: the same worker code
            # measured 617 ms p50 first and 120 ms second in one run (A/A, 1,000 clicks/s).
            run_pipeline(group, stream[:warmup], None, args)
        r["saturate"] = run_pipeline(group, stream, None, args)
        r["paced"] = run_pipeline(group, paced, args.rate[0], args)
        if len(args.rate) > 1:
            r["more_paced"] = [run_pipeline(group, paced, rate, args) for rate in args.rate[1:]]
    if args.baseline is not None:
        # The same runs with the baseline's workers, then this one's paced run again: later runs
        # are faster (the broker warms up for minutes), so the order is A B B A and each side's
        # paced figure is the mean of its two runs.
        with worker_group(address, ckpt, args.workers, args, work, code=args.baseline) as group:
            base = {"saturate": run_pipeline(group, stream, None, args)}
            first = run_pipeline(group, paced, args.rate[0], args)
            second = run_pipeline(group, paced, args.rate[0], args)
        r["baseline"] = {**base, "paced": mean_of_runs(first, second)}
        with worker_group(address, ckpt, args.workers, args, work) as group:
            r["paced"] = mean_of_runs(run_pipeline(group, paced, args.rate[0], args), r["paced"])
    return r


def print_table(results: dict[str, Any]) -> None:
    print(f"\n{results['date']}  {results['machine']}  load average "
          f"{results['load_average_start'][0]:.1f} → {results['load_average_end'][0]:.1f}")
    for kind, r in results["kinds"].items():
        fwd = r["forward"]
        line = f"{kind:8s} forward events/s by batch: " + ", ".join(
            f"{b}: {v['events_per_s']:,.0f}" for b, v in sorted(fwd.items()))
        print(line)
        for label, runs in (("pipeline", r), ("baseline", r.get("baseline"))):
            if runs and "saturate" in runs:
                print_runs(label, runs, fwd)


def print_runs(label: str, runs: dict[str, Any], fwd: dict[int, dict[str, float]]) -> None:
    """One worker's saturated and paced runs (`label`: this checkout's, or the baseline's)."""
    s, q = runs["saturate"], runs["paced"]
    b = max(1, round(s["mean_batch"]))
    cost = (f", cost {fwd[b]['events_per_s'] / s['events_per_s']:.1f}x the bare forward at that batch"
            if b in fwd and s["events_per_s"] else "")
    print(f"{'':8s} {label} {s['events_per_s']:,.0f} events/s (mean batch {s['mean_batch']:.1f}{cost}); "
          f"paced {q['offered_rate']:,.0f}/s: {q['events_per_s']:,.0f}/s served, p50 {q['p50_ms']:.1f} ms, "
          f"p99 {q['p99_ms']:.1f} ms, mean batch {q['mean_batch']:.1f}")
    if s.get("per_worker"):
        print(f"{'':8s} saturated, per worker: " + ", ".join(
            f"{w['events_per_s']:,.0f} events/s ({w['clicks']:,.0f} clicks)" for w in s["per_worker"]))
    for more in runs.get("more_paced", []):
        print(f"{'':8s} paced {more['offered_rate']:,.0f}/s: {more['events_per_s']:,.0f}/s served, "
              f"p50 {more['p50_ms']:.1f} ms, p99 {more['p99_ms']:.1f} ms, mean batch {more['mean_batch']:.1f}")
    if q.get("runs"):
        print(f"{'':8s} (mean of two paced runs, A B B A order: p50 " + " and ".join(
            f"{run['p50_ms']:.1f}" for run in q["runs"]) + " ms, p99 " + " and ".join(
            f"{run['p99_ms']:.1f}" for run in q["runs"]) + " ms)")
    print_stages(q)
    if q.get("cross_check"):
        x = q["cross_check"]
        print(f"{'':8s} the same answers timed by an {x['client']} consumer: {x['answered']:,} answered, "
              f"p50 {x['p50_ms']:.1f} ms, p99 {x['p99_ms']:.1f} ms")


def print_stages(run: dict[str, Any]) -> None:
    """The paced run's stage table: where a click's end-to-end time goes."""
    mean = run["mean_ms"] or float("nan")
    print(f"{'':8s} {'stage':12s} {'p50 ms':>8s} {'p99 ms':>8s} {'mean/click ms':>14s} {'share':>6s}")
    inside = 0.0
    for stage, v in run["stages"].items():
        inside += v["mean_per_click_ms"]
        p50 = "-" if v["p50_ms"] is None else f"{v['p50_ms']:.2f}"
        p99 = "-" if v["p99_ms"] is None else f"{v['p99_ms']:.2f}"
        print(f"{'':8s} {stage:12s} {p50:>8s} {p99:>8s} {v['mean_per_click_ms']:14.2f} "
              f"{v['mean_per_click_ms'] / mean:6.1%}")
    print(f"{'':8s} {'outside':12s} {'':>8s} {'':>8s} {mean - inside:14.2f} {(mean - inside) / mean:6.1%}"
          f"   (answer to this script's consumer; with --log-append-time also click to the broker)")
    print(f"{'':8s} {'end to end':12s} {run['p50_ms']:8.2f} {run['p99_ms']:8.2f} {mean:14.2f}")


if __name__ == "__main__":
    sys.exit(main())
