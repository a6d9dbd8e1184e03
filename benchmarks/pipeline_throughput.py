"""Pipeline throughput: a fixed synthetic click stream through the real broker and one
`seqrec worker`, against the bare batched model forward on the same histories.

For each attention kind:
  * saturate: all clicks produced as fast as possible while the worker runs; events/s is
    clicks / (last answer received - first click sent);
  * paced: clicks produced at --rate events/s, each click at its own time; end-to-end latency = click sent → its answer
    received by a consumer (p50/p99), the figure the latency goal is about;
  * stages: the worker's `seqrec_stage_seconds{stage}` histograms (from its /metrics at the end of
    each run): p50/p99 per stage and each stage's share of the mean end-to-end time; what is
    left over is outside the worker (the answer's trip to this script's consumer);
  * forward: `Recommender.recommend` alone on the same kind of histories at the worker's mean
    batch size and at fixed sizes, so the pipeline's cost is a ratio.

The models are untrained (seeded random weights): the cost of a forward pass does not depend
on the weights. Results print as a table and go to --out as JSON. Not a test.

    python benchmarks/pipeline_throughput.py                       # 100,000 clicks, 10,000 users
    python benchmarks/pipeline_throughput.py --clicks 20000 --users 2000 --kinds softmax
    python benchmarks/pipeline_throughput.py --forward-only --device cuda   # GPU machine
    git worktree add /tmp/before <commit>
    python benchmarks/pipeline_throughput.py --kinds softmax --rate 1000 --baseline /tmp/before
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import random
import sys
import tempfile
import threading
import time
import uuid
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
from seqrec.pipeline.kafka_security import open_client
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
    `produced_at`, equal for a record that a producer's retry wrote twice)."""

    def __init__(self, bootstrap: str, topic: str, security: KafkaSecuritySettings | None = None) -> None:
        super().__init__(daemon=True)
        from kafka import KafkaConsumer

        self.consumer = open_client(KafkaConsumer, bootstrap, security, auto_offset_reset="earliest",
                                    enable_auto_commit=False, group_id=None, fetch_max_wait_ms=5,
                                    isolation_level="read_committed")
        self.consumer.subscribe([topic])
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

    def __init__(self, bootstrap: str, topic: str, security: KafkaSecuritySettings | None = None) -> None:
        threading.Thread.__init__(self, daemon=True)
        self.bootstrap, self.topic, self.security = bootstrap, topic, security
        self.first, self.times, self.produced = {}, {}, {}
        self.total = 0
        self.stopping = threading.Event()
        self.subscribed = threading.Event()

    def run(self) -> None:
        asyncio.run(self._consume())

    async def _consume(self) -> None:
        from aiokafka import AIOKafkaConsumer

        consumer = open_client(AIOKafkaConsumer, self.bootstrap, self.security, auto_offset_reset="earliest",
                               enable_auto_commit=False, group_id=None, fetch_max_wait_ms=5,
                               isolation_level="read_committed")
        consumer.subscribe([self.topic])
        await consumer.start()
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


def run_pipeline(bootstrap: str, ckpt: Path, stream: list[ClickEvent], rate: float | None,
                 args: argparse.Namespace, workdir: Path, code: Path | None = None) -> dict[str, Any]:
    """One worker (from checkout `code`, default this one) serving `stream`, paced at `rate`."""
    app = f"bench{uuid.uuid4().hex[:6]}"
    if args.log_append_time:
        create_log_append_time_clicks(bootstrap, f"{app}-clicks", args)
    worker = start_worker(bootstrap, ckpt, app, args, workdir, code=code)
    try:
        worker.wait_ready(timeout_s=120)
        clock = AnswerClock(bootstrap, f"{app}-recs", args.security)
        clocks = [clock, AioAnswerClock(bootstrap, f"{app}-recs", args.security)] if args.cross_check and rate else [clock]
        for c in clocks:
            c.start()
        if len(clocks) > 1:
            clocks[1].subscribed.wait(30)
        sent = produce(bootstrap, f"{app}-clicks", stream, rate, args.security)
        deadline = time.time() + args.timeout
        while any(len(c.first) < len(stream) for c in clocks) and time.time() < deadline:
            time.sleep(0.1)
        for c in clocks:
            c.stopping.set()
            c.join()
        answered = len(clock.first)
        last = max(clock.first.values()) if clock.first else float("nan")
        lat = latencies_ms(clock, sent)
        _, exposition = worker.get("/metrics")
        m = {name: worker.metric(name) for name in (
            "seqrec_batch_size_sum", "seqrec_batch_size_count",
            "seqrec_inference_seconds_sum", "seqrec_inference_seconds_count",
            "seqrec_worker_latency_seconds_sum", "seqrec_worker_latency_seconds_count",
            "seqrec_end_to_end_seconds_sum", "seqrec_end_to_end_seconds_count")}
    finally:
        worker.stop()
    return {
        "clicks": len(stream),
        "answered": answered,
        "events_per_s": answered / (last - min(sent.values())) if answered else 0.0,
        "offered_rate": rate,
        **quantiles(lat),
        "mean_ms": sum(lat) / len(lat) if lat else None,
        # the same answers timed by a second, aiokafka consumer (--cross-check)
        "cross_check": {"client": "aiokafka", "answered": len(clocks[1].first),
                        **quantiles(latencies_ms(clocks[1], sent))} if len(clocks) > 1 else None,
        "stages": stage_breakdown(exposition.decode(), answered),
        "mean_batch": m["seqrec_batch_size_sum"] / max(m["seqrec_batch_size_count"], 1),
        "inference_ms_per_batch": 1000 * m["seqrec_inference_seconds_sum"] / max(m["seqrec_inference_seconds_count"], 1),
        "worker_latency_ms": 1000 * m["seqrec_worker_latency_seconds_sum"] / max(m["seqrec_worker_latency_seconds_count"], 1),
        # the click's Kafka timestamp (set by the producer) → answer handed to the worker's producer
        "kafka_to_answer_ms": 1000 * m["seqrec_end_to_end_seconds_sum"] / max(m["seqrec_end_to_end_seconds_count"], 1),
    }


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


def stage_breakdown(exposition: str, clicks: int) -> dict[str, dict[str, float | None]]:
    """Per stage from a worker's /metrics text: p50/p99 (ms, over its observations: clicks or
    batches) and the mean ms a click spent in it (`seqrec_stage_click_seconds_total` / clicks)."""
    from prometheus_client.parser import text_string_to_metric_families

    buckets: dict[str, list[tuple[float, float]]] = {s: [] for s in STAGES}
    click_seconds: dict[str, float] = {}
    for family in text_string_to_metric_families(exposition):
        for sample in family.samples:
            stage = sample.labels.get("stage")
            if sample.name == "seqrec_stage_seconds_bucket":
                buckets[stage].append((float(sample.labels["le"]), sample.value))
            elif sample.name == "seqrec_stage_click_seconds_total":
                click_seconds[stage] = sample.value
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
    p.add_argument("--rate", type=float, default=5000.0, help="offered events/s of the paced run")
    p.add_argument("--paced-clicks", type=int, default=30_000)
    p.add_argument("--partitions", type=int, default=8)
    p.add_argument("--max-batch", type=int, default=256)
    p.add_argument("--max-wait-ms", type=float, default=5.0)
    p.add_argument("--history-len", type=int, default=50)
    p.add_argument("--torch-threads", type=int, default=1)
    add_worker_arguments(p)
    p.add_argument("--sizes", type=int, nargs="+", default=[1, 16, 64, 256])
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
        "kinds": {},
    }
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        with (contextlib.nullcontext(None) if args.forward_only else broker(args.bootstrap, work)) as address:
            for i, kind in enumerate(args.kinds):
                ckpt = make_checkpoint(kind, args.items, args.history_len, work)
                r: dict[str, Any] = {}
                if not args.forward_only and i == 0 and args.warmup:
                    # A fresh broker (its JVM) is slow for the first minute: the same worker code
                    # measured 617 ms p50 first and 120 ms second in one run (A/A, 1,000 clicks/s).
                    run_pipeline(address, ckpt, stream[:args.warmup], None, args, work)
                if not args.forward_only:
                    paced = synthetic_stream(args.paced_clicks, args.users, args.items, seed=2)
                    r["saturate"] = run_pipeline(address, ckpt, stream, None, args, work)
                    r["paced"] = run_pipeline(address, ckpt, paced, args.rate, args, work)
                    if args.baseline is not None:
                        # The same runs with the baseline's worker, then this one's paced run again:
                        # later runs are faster (the broker warms up for minutes), so the order is
                        # A B B A and each side's paced figure is the mean of its two runs.
                        base = {"saturate": run_pipeline(address, ckpt, stream, None, args, work, code=args.baseline)}
                        base["paced"] = run_pipeline(address, ckpt, paced, args.rate, args, work, code=args.baseline)
                        second = run_pipeline(address, ckpt, paced, args.rate, args, work, code=args.baseline)
                        r["baseline"] = {**base, "paced": mean_of_runs(base["paced"], second)}
                        r["paced"] = mean_of_runs(run_pipeline(address, ckpt, paced, args.rate, args, work), r["paced"])
                sizes = sorted(set(args.sizes) | ({max(1, round(r["saturate"]["mean_batch"]))} if r else set()))
                r["forward"] = bare_forward(ckpt, histories, sizes, args.device, args.torch_threads)
                results["kinds"][kind] = r
                print(json.dumps({kind: r}, indent=1), flush=True)
    results["load_average_end"] = os.getloadavg()
    print_table(results)
    if args.out:
        args.out.write_text(json.dumps(results, indent=1))
    return 0


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
