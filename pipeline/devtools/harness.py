"""Drive and observe real workers from outside: produce clicks, read answers, dead letters and
the table's changelog, and run `seqrec worker` as a subprocess. The integration tests and the
throughput benchmark share these; nothing here runs inside a worker.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

from seqrec.pipeline.kafka_security import open_client
from seqrec.pipeline.settings import KafkaSecuritySettings
from seqrec.pipeline.serving.source import ClickEvent, encode_click
from seqrec.pipeline.serving.state import UserHistory, decode_table_key


def make_producer(bootstrap: str, security: KafkaSecuritySettings | None = None, **overrides: Any):
    from kafka import KafkaProducer

    config: dict[str, Any] = {"linger_ms": 5, "acks": 1, "enable_idempotence": False}
    config.update(overrides)
    return open_client(KafkaProducer, bootstrap, security, **config)


def produce_raw(bootstrap: str, topic: str, messages: Iterable[tuple[bytes | None, bytes | None]],
                security: KafkaSecuritySettings | None = None) -> int:
    """Send (key, value) pairs as they are; return how many."""
    producer = make_producer(bootstrap, security)
    n = 0
    try:
        for key, value in messages:
            producer.send(topic, key=key, value=value)
            n += 1
        producer.flush()
    finally:
        producer.close()
    return n


def produce_clicks(bootstrap: str, topic: str, clicks: Iterable[ClickEvent],
                   security: KafkaSecuritySettings | None = None) -> int:
    """Send clicks keyed by user id, as the contract says."""
    return produce_raw(bootstrap, topic, ((c.user_id.encode(), encode_click(c)) for c in clicks), security)


def produce_steadily(bootstrap: str, topic: str, clicks: list[ClickEvent], *, batch: int = 50,
                     pause_s: float = 0.1) -> threading.Thread:
    """Produce `clicks` in a started thread, `batch` at a time with a pause between (~500/s by
    default), so a fault injected meanwhile lands mid-stream; join it to wait for the last one."""
    def run() -> None:
        for i in range(0, len(clicks), batch):
            produce_clicks(bootstrap, topic, clicks[i:i + batch])
            time.sleep(pause_s)

    thread = threading.Thread(target=run)
    thread.start()
    return thread


@dataclass
class Consumed:
    records: list[dict[str, Any]] = field(default_factory=list)
    receive_ms: list[int] = field(default_factory=list)  # wall time each record was polled


def consume_until(
    bootstrap: str,
    topic: str,
    done: Callable[[list[dict[str, Any]]], bool],
    *,
    timeout_s: float = 60.0,
    security: KafkaSecuritySettings | None = None,
) -> Consumed:
    """Read JSON records from the start of `topic` until `done(records)` or the timeout (committed
    ones only: read_committed)."""
    from kafka import KafkaConsumer

    consumer = open_client(
        KafkaConsumer, bootstrap, security, auto_offset_reset="earliest",
        enable_auto_commit=False, group_id=None, consumer_timeout_ms=500,
        isolation_level="read_committed",  # a worker under exactly_once: only committed answers
    )
    consumer.subscribe([topic])
    out = Consumed()
    deadline = time.monotonic() + timeout_s
    try:
        while time.monotonic() < deadline and not done(out.records):
            batch = consumer.poll(timeout_ms=200)
            now_ms = time.time_ns() // 1_000_000
            for messages in batch.values():
                for message in messages:
                    out.records.append(json.loads(message.value))
                    out.receive_ms.append(now_ms)
    finally:
        consumer.close()
    return out


def read_to_end(bootstrap: str, topic: str, *, committed_only: bool = True,
                timeout_s: float = 30.0) -> tuple[list[Any], int]:
    """(every record of `topic` from its start to its end offsets, the sum of those offsets).
    read_committed unless `committed_only` is false; a transaction's commit marker takes an offset
    and is no record."""
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, group_id=None,
                             isolation_level="read_committed" if committed_only else "read_uncommitted")
    try:
        deadline = time.monotonic() + timeout_s
        partitions = None
        while partitions is None and time.monotonic() < deadline:
            partitions = consumer.partitions_for_topic(topic)
            if partitions is None:
                time.sleep(0.2)
        if not partitions:
            return [], 0
        tps = [TopicPartition(topic, p) for p in sorted(partitions)]
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        end = consumer.end_offsets(tps)
        records: list[Any] = []
        while any(consumer.position(tp) < end[tp] for tp in tps) and time.monotonic() < deadline:
            for messages in consumer.poll(timeout_ms=200).values():
                records.extend(messages)
        return records, sum(end.values())
    finally:
        consumer.close()


def read_changelog(bootstrap: str, topic: str, *, timeout_s: float = 30.0) -> dict[str, UserHistory]:
    """The table as a recovering worker would rebuild it (read_committed, as Faust's recovery reads
    it under exactly_once): the last value per key."""
    table: dict[str, UserHistory] = {}
    for m in read_to_end(bootstrap, topic, timeout_s=timeout_s)[0]:
        key = decode_table_key(m.key)
        if m.value is None:
            table.pop(key, None)
        else:
            table[key] = UserHistory.from_bytes(m.value)
    return table


_ENTRY = "import sys; from seqrec.pipeline.cli import main; sys.exit(main())"


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except FileNotFoundError:
        return ""


class WorkerProcess:
    """`seqrec worker ...` in a subprocess with its own datadir and web port; log to a file."""

    def __init__(
        self,
        args: Sequence[str],
        *,
        log_path: Path,
        web_port: int,
        datadir: Path | None = None,
        env: dict[str, str] | None = None,
    ) -> None:
        self.args = list(args)
        self.datadir = datadir
        self.log_path = Path(log_path)
        self.web_port = web_port
        self.env = {**os.environ, **(env or {})}
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> "WorkerProcess":
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-c", _ENTRY, "worker", *self.args],
            stdout=self._log, stderr=subprocess.STDOUT, env=self.env, start_new_session=True,
        )
        return self

    def get(self, path: str) -> tuple[int, bytes]:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.web_port}{path}", timeout=2) as r:
                return r.status, r.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read()

    def wait_ready(self, timeout_s: float = 90.0) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"worker exited ({self.proc.returncode}):\n{self.log_tail()}")
            try:
                if self.get("/ready")[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.3)
        raise TimeoutError(f"worker not ready in {timeout_s} s:\n{self.log_tail()}")

    def metric(self, name: str) -> float:
        """Sum of a Prometheus series' samples (all labels)."""
        _, body = self.get("/metrics")
        total = 0.0
        for line in body.decode().splitlines():
            if line.startswith(name) and (line[len(name)] in " {"):
                total += float(line.rsplit(" ", 1)[1])
        return total

    def stop(self, timeout_s: float = 30.0) -> int:
        """Graceful stop (SIGTERM), then SIGKILL if it hangs; return the exit code."""
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else 0
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            return self.kill()

    def kill(self) -> int:
        """kill -9: no shutdown, no final commit."""
        if self.proc is None:
            return 0
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        return self.proc.wait(30)

    def model_processes(self) -> list[int]:
        """Pids of the worker's model processes (`--inference process`; Linux /proc), leaving
        out multiprocessing's resource tracker, its other child."""
        if self.proc is None:
            return []
        tasks = Path(f"/proc/{self.proc.pid}/task").glob("*/children")  # a thread's children are under it
        pids = [int(pid) for task in tasks for pid in task.read_text().split()]
        return [pid for pid in pids if "spawn_main" in _cmdline(pid)]

    def dump_state(self) -> dict[str, UserHistory]:
        """The table in this (stopped) worker's datadir, through `seqrec worker --dump-state`."""
        out = subprocess.run(
            [sys.executable, "-c", _ENTRY, "worker", "--datadir", str(self.datadir), "--dump-state"],
            check=True, capture_output=True, env=self.env, timeout=60,
        ).stdout
        rows = [json.loads(line) for line in out.decode().splitlines() if line.strip()]
        return {row.pop("user_id"): UserHistory.from_dict(row) for row in rows}

    def log_tail(self, n: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""


__all__ = [
    "Consumed",
    "WorkerProcess",
    "consume_until",
    "make_producer",
    "produce_clicks",
    "produce_raw",
    "read_changelog",
    "read_to_end",
]
