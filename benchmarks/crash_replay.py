"""Faults under load: two `seqrec worker`s in one group and a paced click stream; mid-stream one
fault, then what happened to every click.

Faults (--fault):
  kill     kill -9 of one worker (its partitions move to the other);
  restart  graceful stop (SIGTERM) of one worker, started again at once on its data directory;
  broker   the local broker stopped for --outage seconds and started again on its data.

Reports: clicks sent, answered (distinct), lost (in the topic, never answered), not in the
topic (the benchmark's own producer gave up during a broker outage), dead-lettered, duplicate
answers (total; on the partitions the faulty worker held = "moved", on the other worker's =
"unmoved"), the most seconds of traffic replayed on one partition (the span of send times of
the clicks answered more than once there), the seconds from the fault to the first answer of
a click sent after it on a moved partition, the longest any click waited for its first
answer (sent → received by a consumer), and the seconds from the end of the fault (the
kill, the restarted worker's start, the broker's start returned) until every click sent
before it was answered. The workers use `start_worker` of
pipeline_throughput.py (session timeout 6 s, heartbeat 1 s, no standby replicas, the default
commit interval). A worker that exits on its own is started again at once, as the compose
file's `restart: unless-stopped` does; the report counts those restarts. Not a test.

    python benchmarks/crash_replay.py                          # kill -9 at 450 clicks/s, 40 s, at 15 s
    python benchmarks/crash_replay.py --fault restart --runs 2
    python benchmarks/crash_replay.py --fault broker --outage 10
"""

from __future__ import annotations

import argparse
import contextlib
import json
import re
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from pipeline_throughput import AnswerClock, add_worker_arguments, make_checkpoint, produce, start_worker, synthetic_stream  # noqa: E402

from seqrec.pipeline.devtools.harness import WorkerProcess, consume_until  # noqa: E402
from seqrec.pipeline.devtools.kafka_local import LocalKafka  # noqa: E402
from seqrec.pipeline.devtools.kafka_provider import provide_kafka  # noqa: E402

_LAG_LINE = re.compile(r'^seqrec_consumer_lag\{partition="(\d+)"\}')


def partition_of(key: bytes, partitions: int) -> int:
    """The partition the Java/kafka-python default partitioner picks for a key."""
    from kafka.partitioner.default import murmur2

    return (murmur2(key) & 0x7FFFFFFF) % partitions


def held_partitions(worker: WorkerProcess) -> set[int]:
    """The clicks partitions a worker has reported lag for: its assignment, when it joined
    second and no rebalance moved anything since."""
    _, body = worker.get("/metrics")
    return {int(m.group(1)) for line in body.decode().splitlines() if (m := _LAG_LINE.match(line))}


def click_offsets(bootstrap: str, topic: str) -> dict[str, list[tuple[int, int]]]:
    """event_id → every (partition, offset) it is at in the clicks topic, read to its end."""
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, group_id=None)
    try:
        tps = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        end = consumer.end_offsets(tps)
        places: dict[str, list[tuple[int, int]]] = {}
        while any(consumer.position(tp) < end[tp] for tp in tps):
            for records in consumer.poll(timeout_ms=500).values():
                for r in records:
                    places.setdefault(json.loads(r.value)["event_id"], []).append((r.partition, r.offset))
        return places
    finally:
        consumer.close()


def summarise(sent: dict[str, float], partition: dict[str, int], answers: dict[str, list[float]],
              produced: dict[str, list[int]], in_topic: Counter[str], moved: set[int], fault_at: float,
              dead_lettered: int) -> dict[str, Any]:
    """`in_topic`: how many times each click is in the clicks topic (a producer's retry can
    write one twice); answers beyond that count are duplicates. `produced`: the answers'
    `produced_at`; two equal ones are one answer that the worker's producer wrote twice."""
    counts = Counter({e: len(times) for e, times in answers.items()})
    duplicated = [e for e, n in counts.items() if n > max(in_topic[e], 1) and e in sent]
    extra = {e: counts[e] - max(in_topic[e], 1) for e in duplicated}
    spans: dict[int, list[float]] = {}
    for e in duplicated:
        spans.setdefault(partition[e], []).append(sent[e])
    first = {e: times[0] for e, times in answers.items()}
    # Clicks sent after the fault on the faulty worker's partitions.
    first_after = [first[e] for e in first if partition.get(e) in moved and sent.get(e, 0.0) > fault_at]
    return {
        "sent": len(sent),
        "answered": sum(1 for e in sent if e in answers),
        "lost": sum(1 for e in sent if e not in answers and in_topic[e] > 0),
        "not_in_topic": sum(1 for e in sent if in_topic[e] == 0),
        "written_twice_by_producer": sum(1 for e in sent if in_topic[e] > 1),
        "dead_lettered": dead_lettered,
        "duplicates": sum(extra.values()),
        "duplicates_moved": sum(n for e, n in extra.items() if partition[e] in moved),
        "duplicates_unmoved": sum(n for e, n in extra.items() if partition[e] not in moved),
        "answered_3_times_or_more": sum(1 for e in duplicated if counts[e] >= 3),
        "answers_written_twice_by_worker_producer": sum(len(v) - len(set(v)) for v in produced.values()),
        "max_replayed_s_per_partition": max((max(v) - min(v) for v in spans.values()), default=0.0),
        "replayed_s_by_partition": {p: round(max(v) - min(v), 3) for p, v in sorted(spans.items())},
        "duplicates_by_partition": {p: len(v) for p, v in sorted(spans.items())},
        "moved_partitions": sorted(moved),
        "fault_to_first_moved_answer_s": (min(first_after) - fault_at) if first_after else None,
        "longest_wait_s": max((first[e] - sent[e] for e in sent if e in first), default=0.0),
    }


class Supervisor(threading.Thread):
    """Starts a worker again when it exits on its own, as the compose file's `restart:
    unless-stopped` does: under exactly_once a worker whose transaction cannot commit (fenced by
    a newer owner, failed through an outage) stops, and its clicks wait for the next owner."""

    def __init__(self, workers: list[WorkerProcess]) -> None:
        super().__init__(daemon=True)
        self.workers = workers
        self.lock = threading.Lock()  # held by the benchmark while it stops or starts a worker itself
        self.left_down: set[int] = set()  # id() of workers the fault keeps down (kill -9)
        self.exits: list[int] = []  # exit codes of the workers started again
        self.stopping = threading.Event()

    def run(self) -> None:
        while not self.stopping.wait(0.2):
            with self.lock:
                for w in self.workers:
                    if id(w) not in self.left_down and w.proc is not None and w.proc.poll() is not None:
                        self.exits.append(w.proc.returncode)
                        w.start()


def inflict(fault: str, victim: WorkerProcess, broker: LocalKafka | None, outage_s: float,
            supervisor: Supervisor) -> None:
    if fault == "kill":
        with supervisor.lock:
            supervisor.left_down.add(id(victim))
            victim.kill()
    elif fault == "restart":
        with supervisor.lock:
            victim.stop()
            victim.start()
    elif broker is not None:
        broker.stop()
        time.sleep(outage_s)
        broker.start()


def run_once(bootstrap: str, broker: LocalKafka | None, ckpt: Path, args: argparse.Namespace,
             workdir: Path) -> dict[str, Any]:
    app = f"crash{uuid.uuid4().hex[:6]}"
    survivor = start_worker(bootstrap, ckpt, app, args, workdir, name=f"{app}-a")
    survivor.wait_ready(timeout_s=120)
    victim = start_worker(bootstrap, ckpt, app, args, workdir, name=f"{app}-b")
    supervisor = Supervisor([survivor, victim])
    try:
        victim.wait_ready(timeout_s=120)
        time.sleep(3)  # both observe timers have published their partitions
        stream = synthetic_stream(int(args.rate * args.duration), args.users, args.items, seed=1)
        partition = {c.event_id: partition_of(c.user_id.encode(), args.partitions) for c in stream}
        clock = AnswerClock(bootstrap, f"{app}-recs")
        clock.start()
        supervisor.start()
        sent: dict[str, float] = {}
        producer = threading.Thread(target=lambda: sent.update(produce(bootstrap, f"{app}-clicks", stream, args.rate)))
        producer.start()
        time.sleep(args.fault_at)
        moved = held_partitions(victim) if args.fault != "broker" else set()
        fault_at = time.time()
        inflict(args.fault, victim, broker, args.outage, supervisor)
        fault_end = time.time()
        producer.join()
        deadline = time.time() + args.timeout
        while len(clock.first) < len(stream) and time.time() < deadline:
            time.sleep(0.2)
        time.sleep(3)  # late duplicates
        clock.stopping.set()
        clock.join()
        letters = consume_until(bootstrap, f"{app}-dlq", lambda r: False, timeout_s=3).records
        places = click_offsets(bootstrap, f"{app}-clicks")
        in_topic = Counter({e: len(v) for e, v in places.items()})
    finally:
        supervisor.stopping.set()
        with supervisor.lock:
            victim.kill()
            survivor.stop()
    if args.raw is not None:  # everything the summary is computed from, for a closer look
        args.raw.write_text(json.dumps({"sent": sent, "partition": partition, "answers": clock.times,
                                        "produced": clock.produced, "offsets": places,
                                        "moved": sorted(moved), "fault_at": fault_at, "fault_end": fault_end}))
    result = summarise(sent, partition, clock.times, clock.produced, in_topic, moved, fault_at, len(letters))
    waiting = [clock.first[e] for e in sent if sent[e] < fault_end and e in clock.first]
    result["fault_s"] = fault_end - fault_at
    result["workers_exited_and_restarted"] = len(supervisor.exits)
    result["restarted_workers_exit_codes"] = supervisor.exits
    # From the end of the fault until every click sent before it had its answer: as this script's
    # consumer received it, and as the workers produced it (produced_at), which leaves out the
    # benchmark's own clients.
    result["backlog_answered_s"] = max(waiting) - fault_end if waiting else None
    made = [min(clock.produced[e]) / 1000 for e in sent if sent[e] < fault_end and e in clock.produced]
    result["backlog_produced_s"] = max(made) - fault_end if made else None
    after = [ms / 1000 for answers in clock.produced.values() for ms in answers if ms / 1000 > fault_end]
    result["first_answer_after_fault_s"] = min(after) - fault_end if after else None
    lost_at = {e: places[e] for e in sorted(places) if e not in clock.times}  # (partition, offset)
    result["lost_at_count"] = len(lost_at)
    result["lost_at"] = dict(list(lost_at.items())[:20])  # the first few: a stalled run loses thousands
    return result


@contextlib.contextmanager
def kafka_for(fault: str, workdir: Path) -> Iterator[tuple[str, LocalKafka | None, str]]:
    """(bootstrap, the broker when this benchmark runs it, where it came from); the broker
    fault needs a local broker of its own to stop."""
    if fault == "broker":
        broker = LocalKafka(data_dir=workdir / "kafka")
        try:
            yield broker.start(), broker, "local broker"
        finally:
            broker.stop()
        return
    with provide_kafka() as (bootstrap, source):
        yield bootstrap, None, source


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--fault", choices=["kill", "restart", "broker"], default="kill")
    p.add_argument("--rate", type=float, default=450.0, help="clicks/s produced")
    p.add_argument("--duration", type=float, default=40.0, help="seconds of traffic")
    p.add_argument("--fault-at", type=float, default=15.0, help="seconds into the traffic of the fault")
    p.add_argument("--outage", type=float, default=10.0, help="seconds the broker stays down (--fault broker)")
    p.add_argument("--runs", type=int, default=1)
    p.add_argument("--users", type=int, default=2000)
    p.add_argument("--items", type=int, default=500)
    p.add_argument("--partitions", type=int, default=8)
    p.add_argument("--max-batch", type=int, default=64)
    p.add_argument("--max-wait-ms", type=float, default=5.0)
    p.add_argument("--history-len", type=int, default=50)
    p.add_argument("--torch-threads", type=int, default=1)
    add_worker_arguments(p)
    p.add_argument("--timeout", type=float, default=120.0, help="seconds to wait for the last answers")
    p.add_argument("--out", type=Path, help="write the results here as JSON")
    p.add_argument("--raw", type=Path, help="write the last run's send and answer times here as JSON")
    p.add_argument("--keep", type=Path, metavar="DIR",
                   help="keep the broker's and workers' logs and data here (default: a temporary directory, removed)")
    args = p.parse_args()
    if args.keep is not None:
        args.keep.mkdir(parents=True, exist_ok=True)
    with (contextlib.nullcontext(str(args.keep)) if args.keep else tempfile.TemporaryDirectory(prefix="crash-replay-")) as tmp:
        workdir = Path(tmp)
        with kafka_for(args.fault, workdir) as (bootstrap, broker, source):
            ckpt = make_checkpoint("softmax", args.items, 50, workdir)
            results = []
            for run in range(args.runs):
                result = run_once(bootstrap, broker, ckpt, args, workdir)
                print(f"run {run + 1}: " + json.dumps(result), flush=True)
                results.append(result)
    if args.out:
        args.out.write_text(json.dumps({"args": {k: str(v) for k, v in vars(args).items()},
                                        "broker": source, "runs": results}, indent=1))


if __name__ == "__main__":
    main()
