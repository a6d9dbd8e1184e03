"""`seqrec demo`: the whole system on one machine, with live figures.

Starts (or finds) a broker, trains a first model on the older half of a click log (synthetic
unless --data), starts a worker that follows the model store, an archiver that keeps the clicks
topic as Parquet, a retraining loop that reads that archive, and replays the log: the older half as fast as possible (users' histories), the newer half
on its schedule. Everything it started is stopped at the end, also on Ctrl-C.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from kafka import KafkaConsumer, KafkaProducer
from rich.console import Console
from rich.live import Live
from rich.table import Table

from seqrec.model.config import ModelConfig
from seqrec.model.data import load_dataset, load_timed_clicks, synthetic_clicks
from seqrec.model.train import TrainConfig
from seqrec.pipeline.client import RequestApiError, recommend
from seqrec.pipeline.evaluation.clicklog import clicks_from_rows, interleave_sequences
from seqrec.pipeline.devtools.harness import WorkerProcess
from seqrec.pipeline.devtools.kafka_local import free_port
from seqrec.pipeline.devtools.kafka_provider import BOOTSTRAP_ENV, provide_kafka
from seqrec.pipeline.kafka_security import open_client
from seqrec.pipeline.lifecycle.model_store import ModelStore
from seqrec.pipeline.evaluation.offline_eval import RunResult
from seqrec.pipeline.evaluation.prequential import fitting_window_ms, score_shown_lists
from seqrec.pipeline.evaluation.replay import replay_to_kafka
from seqrec.pipeline.evaluation.report import pyplot, write_report
from seqrec.pipeline.lifecycle.retrain import retrain_once
from seqrec.pipeline.settings import KafkaSecuritySettings, KafkaSettings, Settings, load_settings
from seqrec.pipeline.serving.source import ClickEvent
from seqrec.pipeline.serving.worker import ensure_topics
from seqrec.pipeline.storage.click_window import archived_counts

log = logging.getLogger(__name__)

DEFAULT_LIVE_S = 300.0  # how long the live half plays when no --duration or --speed is given
BAD_EVENT_SHARE = 0.005  # malformed messages mixed into the replay, to show the dead-letter path


@dataclass(frozen=True)
class DemoOptions:
    duration_s: float | None = None  # None: until Ctrl-C or the log ends
    data: Path | None = None
    users: int = 1000
    items: int = 300
    speed: float | None = None  # replay speed of the live half; None fits it into the duration, inf = max
    attention: str = "softmax"
    retrain_interval_s: float = 60.0
    workdir: Path | None = None
    seed: int = 0


class _StopReplay(Exception):
    pass


@dataclass
class LiveStats:
    """What the demo shows, fed by the replay (clicks sent) and a consumer thread (answers).

    The older half goes out as fast as possible, a backlog the worker needs seconds to answer;
    clicks sent before the backlog's last answer wait behind it. Their latency is catch-up, kept
    apart from the live traffic's."""

    started: float = field(default_factory=time.monotonic)
    sent: list[ClickEvent] = field(default_factory=list)
    sent_at: dict[str, tuple[int, int]] = field(default_factory=dict)  # event id -> (index, send ms)
    shown: dict[str, list[str]] = field(default_factory=dict)
    latencies: list[tuple[int, float]] = field(default_factory=list)  # (send ms, click -> answer ms)
    answer_times: deque = field(default_factory=lambda: deque(maxlen=100_000))
    versions: dict[str, int] = field(default_factory=dict)  # version -> send ms of the first click it answered
    current_version: str = "-"
    dead_letters: int = 0
    live_from: int = 10**12  # index in `sent` where the scheduled (scored) part starts, once known
    backlog_answered: int = 0
    caught_up_ms: int | None = None  # when the backlog's last answer came
    asked: str = "-"  # the request API's latest answer for the demo's user, as shown
    archived: str = "-"  # what the click archive holds, as shown
    last_retrain: str = "-"  # the retrain loop's latest outcome line
    request_answers: int = 0  # 200s of the request API
    lock: threading.Lock = field(default_factory=threading.Lock)

    def on_send(self, click: ClickEvent) -> None:
        with self.lock:
            self.sent_at[click.event_id] = (len(self.sent), click.timestamp)
            self.sent.append(click)

    def start_live(self, now_ms: int) -> None:
        """The backlog is all sent; what follows is live traffic."""
        with self.lock:
            self.live_from = len(self.sent)
            self._check_caught_up(now_ms)

    def on_answer(self, record: dict, received_ms: int) -> None:
        event_id = record.get("event_id")
        with self.lock:
            if event_id in self.shown or event_id not in self.sent_at:
                return
            self.shown[event_id] = [i["item_id"] for i in record.get("items", [])]
            index, sent_ms = self.sent_at[event_id]
            self.latencies.append((sent_ms, received_ms - sent_ms))
            if index < self.live_from:
                self.backlog_answered += 1
                self._check_caught_up(received_ms)
            self.answer_times.append(time.monotonic())
            self.current_version = str(record.get("model_version"))
            self.versions.setdefault(self.current_version, sent_ms)

    def _check_caught_up(self, now_ms: int) -> None:
        if self.caught_up_ms is None and self.backlog_answered >= self.live_from:
            self.caught_up_ms = now_ms

    def split_latencies(self) -> tuple[list[float], list[float]]:
        """(live, catch-up) click -> answer latencies in ms: catch-up for clicks sent before the
        backlog's last answer, live for the rest."""
        with self.lock:
            cut = self.caught_up_ms if self.caught_up_ms is not None else 2**63
            return ([ms for sent, ms in self.latencies if sent >= cut],
                    [ms for sent, ms in self.latencies if sent < cut])

    def snapshot(self) -> dict[str, float | str | int]:
        live, catchup = self.split_latencies()
        with self.lock:
            now = time.monotonic()
            recent = sum(1 for t in self.answer_times if now - t <= 5.0) / 5.0
            lat = sorted((live or catchup)[-5000:])
            report = score_shown_lists(self.sent, self.shown, ks=(10,), score_from=min(self.live_from, len(self.sent)))
            return {
                "elapsed_s": now - self.started,
                "sent": len(self.sent),
                "answered": len(self.shown),
                "events_per_s": recent,
                "p50_ms": lat[len(lat) // 2] if lat else float("nan"),
                "p99_ms": lat[int(len(lat) * 0.99)] if lat else float("nan"),
                "latency_of": "live" if live else "catch-up",
                "hit_rate@10": report.overall["HR@10"],
                "scored": report.scored,
                "model_version": self.current_version,
                "versions_seen": len(self.versions),
                "dead_letters": self.dead_letters,
                "asked": self.asked,
                "archived": self.archived,
                "last_retrain": self.last_retrain,
                "request_answers": self.request_answers,
            }


def _table(s: dict) -> Table:
    table = Table(title="seqrec demo (Ctrl-C to stop)", show_header=False)
    rows = [
        ("elapsed", f"{s['elapsed_s']:.0f} s"),
        ("clicks sent / answered", f"{s['sent']:,} / {s['answered']:,}"),
        ("answers per second (5 s)", f"{s['events_per_s']:,.0f}"),
        (f"end-to-end latency p50 / p99 ({s['latency_of']})", f"{s['p50_ms']:.0f} / {s['p99_ms']:.0f} ms"),
        ("hit rate@10 so far (live part)", f"{s['hit_rate@10']:.3f} over {s['scored']:,} clicks"),
        ("model version", f"{s['model_version']} ({s['versions_seen']} seen)"),
        ("dead letters", f"{s['dead_letters']:,}"),
        ("on request (GET /users/.../recommendations)", s["asked"]),
        ("click archive (seqrec archive)", s["archived"]),
        ("last retrain (from the archive)", s["last_retrain"]),
    ]
    for name, value in rows:
        table.add_row(name, value)
    return table


def demo_clicks(options: DemoOptions) -> list[ClickEvent]:
    if options.data is None:
        rows = synthetic_clicks(options.users, options.items, seed=options.seed)
    else:
        rows = load_timed_clicks(options.data)
        if rows is None:
            dataset = load_dataset(options.data)
            rows = interleave_sequences(dataset.users, dataset.sequences, seed=options.seed)
    return list(clicks_from_rows(rows))


def _consume_answers(bootstrap: str, settings: Settings, stats: LiveStats, stop: threading.Event) -> None:
    k = settings.kafka
    consumer = open_client(KafkaConsumer, bootstrap, k.security, group_id=None, auto_offset_reset="earliest",
                           enable_auto_commit=False, isolation_level="read_committed")
    consumer.subscribe([k.recommendations_topic, k.dead_letter_topic])
    try:
        while not stop.is_set():
            for tp, records in consumer.poll(timeout_ms=200, max_records=5000).items():
                now_ms = time.time_ns() // 1_000_000
                for record in records:
                    if tp.topic == k.dead_letter_topic:
                        with stats.lock:
                            stats.dead_letters += 1
                        continue
                    try:
                        stats.on_answer(json.loads(record.value), now_ms)
                    except ValueError:
                        continue
    finally:
        consumer.close()


def _ask_periodically(url: str, user_id: str, stats: LiveStats, stop: threading.Event, every_s: float = 2.0) -> None:
    """The request API beside the stream: one user's list, asked every `every_s`, as the table shows it."""
    while not stop.wait(every_s):
        started = time.perf_counter()
        try:
            answer = recommend(user_id, k=5, url=url)
        except RequestApiError as exc:
            shown = f"{user_id}: {exc}"
        else:
            took_ms = (time.perf_counter() - started) * 1000
            items = ", ".join(i["item_id"] for i in answer["items"])
            fallback = ", popular items: no history yet" if answer["fallback"] else ""
            shown = f"{user_id}: {items} ({took_ms:.0f} ms{fallback})"
            with stats.lock:
                stats.request_answers += 1
        with stats.lock:
            stats.asked = shown


def _watch_archive(url: str, retrain_log: Path, stats: LiveStats, stop: threading.Event, every_s: float = 2.0) -> None:
    """What the archive holds and what the retrain loop last did with it, for the table."""
    while not stop.wait(every_s):
        files, clicks, days = archived_counts(url)
        outcomes = [line for line in retrain_log.read_text(errors="replace").splitlines()
                    if line.startswith(("retrain:", "retrain failed:"))] if retrain_log.exists() else []
        with stats.lock:
            stats.archived = f"{clicks:,} clicks in {files} files, {days} day{'s' * (days != 1)}" if files else "no file yet"
            if outcomes:  # "N clicks trained, M held out: published V (...) in 2 s"
                what, _, verdict = outcomes[-1].removeprefix("retrain: ").partition("; ")
                stats.last_retrain = f"{what}: {verdict.rsplit(': ', 1)[-1]}" if verdict else what


@contextlib.contextmanager
def _kafka_client_logs_to(path: Path) -> Iterator[None]:
    """kafka-python's own log lines (e.g. `kafka.net.selector: Task ... ran for 0.101s ... blocking the
    event loop`, when the live table's scoring holds the GIL) go to a file, not between the live figures."""
    logger = logging.getLogger("kafka")
    handler = logging.FileHandler(path)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    propagate = logger.propagate
    logger.addHandler(handler)
    logger.propagate = False
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.propagate = propagate
        handler.close()


def _send_bad_events(bootstrap: str, topic: str, n: int, seed: int, security: KafkaSecuritySettings) -> None:
    rng = random.Random(seed)
    bad = [b"\xff\xfe not utf-8", b"{not json", b'{"event_id": "x"}', b'{"event_id":"b","user_id":"u","item_id":1,'
           b'"timestamp":1}']
    producer = open_client(KafkaProducer, bootstrap, security, acks=1, enable_idempotence=False)
    for i in range(n):
        producer.send(topic, key=f"bad-{i}".encode(), value=rng.choice(bad))
    producer.flush()
    producer.close()


def run_demo(options: DemoOptions, console: Console | None = None) -> dict:
    """Run until the duration passes, the log ends or Ctrl-C; return the summary figures."""
    console = console or Console()
    pyplot()  # the report at the end draws plots: without matplotlib, say so before the run
    run_id = uuid.uuid4().hex[:6]
    workdir = options.workdir or Path(tempfile.mkdtemp(prefix="seqrec-demo-"))
    workdir.mkdir(parents=True, exist_ok=True)
    stats = LiveStats()
    stop = threading.Event()
    with contextlib.ExitStack() as stack:
        stack.enter_context(_kafka_client_logs_to(workdir / "kafka-clients.log"))
        bootstrap, source = stack.enter_context(provide_kafka(workdir / "kafka"))
        console.print(f"Kafka: {bootstrap} ({source})")
        # SEQREC_KAFKA__SECURITY__* describe the user's cluster; a broker started here is PLAINTEXT.
        security = load_settings().kafka.security if source == BOOTSTRAP_ENV else KafkaSecuritySettings()
        child_env = {"SEQREC_KAFKA__SECURITY__PROTOCOL": security.protocol}  # the worker and retrainer read the rest
        settings = Settings(app_id=f"seqrec-demo-{run_id}", kafka=KafkaSettings(
            bootstrap_servers=bootstrap, clicks_topic=f"demo-{run_id}-clicks", partitions=4,
            recommendations_topic=f"demo-{run_id}-recommendations", dead_letter_topic=f"demo-{run_id}-clicks.dlq",
            security=security))
        ensure_topics(settings)

        clicks = demo_clicks(options)
        half = len(clicks) // 2
        store = ModelStore(workdir / "models")
        with console.status(f"training a first {options.attention} model on {half:,} clicks ..."):
            first = retrain_once(clicks[:half], store, train_config=TrainConfig(epochs=10, patience=3, progress=False),
                                 model_config=ModelConfig(n_items=1, max_len=50, d_model=32, n_heads=2,
                                                          attention=options.attention),
                                 work_dir=workdir / "train")
        console.print(first.line())

        port = free_port()
        worker = WorkerProcess(
            ["--brokers", bootstrap, "--app-id", settings.app_id, "--datadir", str(workdir / "worker"),
             "--web-port", str(port), "--clicks-topic", settings.kafka.clicks_topic,
             "--recommendations-topic", settings.kafka.recommendations_topic,
             "--dead-letter-topic", settings.kafka.dead_letter_topic, "--partitions", "4",
             "--checkpoint", str(store.checkpoint_path(store.latest())), "--session-timeout", "6",
             "--heartbeat-interval", "1", "--torch-threads", "1", "--recommend-api"],
            log_path=workdir / "worker.log", web_port=port,
            env={"SEQREC_SERVING__MODEL_STORE": store.url, "SEQREC_SERVING__MODEL_POLL_S": "2", **child_env},
        ).start()
        stack.callback(worker.stop)
        with console.status("starting the worker ..."):
            worker.wait_ready(120)
        console.print(f"worker ready (metrics on http://127.0.0.1:{port}/metrics, log {workdir / 'worker.log'})")

        retrain_log = open(workdir / "retrain.log", "ab")
        stack.callback(retrain_log.close)
        archive = workdir / "archive"
        archive_log = open(workdir / "archive.log", "ab")
        stack.callback(archive_log.close)
        archiver = subprocess.Popen(
            [sys.executable, "-m", "seqrec.pipeline.cli", "archive", "--url", str(archive), "--topic",
             settings.kafka.clicks_topic, "--bootstrap", bootstrap, "--group", f"{settings.app_id}-archive",
             "--max-file-seconds", "2"],
            stdout=archive_log, stderr=subprocess.STDOUT, start_new_session=True, env={**os.environ, **child_env})
        stack.callback(_terminate, archiver)
        # Each run reads the archive the archiver keeps (the clicks topic's retention does not matter).
        retrainer = subprocess.Popen(
            [sys.executable, "-m", "seqrec.pipeline.cli", "retrain", "--store", store.url, "--archive",
             str(archive), "--interval", str(options.retrain_interval_s),
             "--epochs", "3", "--tolerance", "0.01"],
            stdout=retrain_log, stderr=subprocess.STDOUT, start_new_session=True,
            env={**os.environ, "OMP_NUM_THREADS": "1", **child_env})  # leave the other core to the worker
        stack.callback(_terminate, retrainer)

        consumer_thread = threading.Thread(target=_consume_answers, args=(bootstrap, settings, stats, stop),
                                           daemon=True)
        consumer_thread.start()
        stack.callback(consumer_thread.join, 5)
        asker = threading.Thread(target=_ask_periodically, args=(f"http://127.0.0.1:{port}", clicks[half].user_id,
                                                                 stats, stop), daemon=True)
        asker.start()
        stack.callback(asker.join, 10)
        watcher = threading.Thread(target=_watch_archive, args=(str(archive), workdir / "retrain.log", stats, stop),
                                   daemon=True)
        watcher.start()
        stack.callback(watcher.join, 10)
        stack.callback(stop.set)

        def on_send(click: ClickEvent) -> None:
            if stop.is_set():
                raise _StopReplay
            stats.on_send(click)

        live_span_s = (clicks[-1].timestamp - clicks[half].timestamp) / 1000
        speed = options.speed or max(live_span_s / (options.duration_s or DEFAULT_LIVE_S), 1.0)
        console.print(f"replaying {half:,} older clicks at full speed, then {len(clicks) - half:,} at {speed:,.0f}x")
        replay_speed = None if math.isinf(speed) else speed

        def replay() -> None:
            try:
                topic = settings.kafka.clicks_topic
                replay_to_kafka(clicks[:half], bootstrap, topic, None, progress=False, on_send=on_send,
                                security=security)
                stats.start_live(time.time_ns() // 1_000_000)
                _send_bad_events(bootstrap, topic, max(1, int(len(clicks) * BAD_EVENT_SHARE)), options.seed, security)
                replay_to_kafka(clicks[half:], bootstrap, topic, replay_speed, progress=False, on_send=on_send,
                                security=security)
            except _StopReplay:
                pass

        replay_thread = threading.Thread(target=replay, daemon=True)
        stats.started = time.monotonic()
        replay_thread.start()
        deadline = time.monotonic() + options.duration_s if options.duration_s else None
        try:
            with Live(_table(stats.snapshot()), console=console, refresh_per_second=2, transient=True) as live:
                while deadline is None or time.monotonic() < deadline:
                    time.sleep(0.5)
                    live.update(_table(stats.snapshot()))
                    if not replay_thread.is_alive() and len(stats.shown) >= len(stats.sent):
                        break
        except KeyboardInterrupt:
            console.print("stopping ...")
        stop.set()
        replay_thread.join(10)
        summary = stats.snapshot()
        summary["report"] = str(write_report([run_result(stats, summary["elapsed_s"])], workdir / "report",
                                             "seqrec demo"))
        summary["versions_published"] = len(store.versions())
    console.print(_table(summary))
    console.print(f"summary: {summary['sent']:,} clicks sent, {summary['answered']:,} answered, "
                  f"hit rate@10 {summary['hit_rate@10']:.3f}, {summary['versions_seen']} model versions served, "
                  f"{summary['dead_letters']} dead letters, {summary['request_answers']} answers on request; "
                  f"report: {summary['report']}")
    return summary


def run_result(stats: LiveStats, seconds: float) -> RunResult:
    """The run as the report draws it: scored in windows that fit the live part's span, each
    version placed at the first click it answered, live latency apart from catch-up."""
    live_from = min(stats.live_from, len(stats.sent))
    scored = stats.sent[live_from:]
    span_ms = scored[-1].timestamp - scored[0].timestamp if scored else 0
    report = score_shown_lists(stats.sent, stats.shown, ks=(5, 10), window_ms=fitting_window_ms(span_ms),
                               score_from=live_from)
    live, catchup = stats.split_latencies()
    versions = sorted((sent_ms, version) for version, sent_ms in stats.versions.items())
    return RunResult("demo (through Kafka)", report, versions, live, seconds, catchup_latency_ms=catchup,
                     latency_label="click -> answer latency (ms)")


def _terminate(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)
