"""Offline evaluation runs over a click log: one or more models, each with a retraining cadence,
side by side on the same traffic, in-process or through a real worker on Kafka."""

from __future__ import annotations

import json
import logging
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kafka import KafkaConsumer, TopicPartition

from seqrec.model.inference import Recommender
from seqrec.model.train import TrainConfig
from seqrec.pipeline.kafka_security import open_client
from seqrec.pipeline.lifecycle.model_store import ModelStore
from seqrec.pipeline.evaluation.prequential import PrequentialReport, score_shown_lists, simulate_serving
from seqrec.pipeline.evaluation.replay import replay_to_kafka
from seqrec.pipeline.lifecycle.retrain import GatePolicy, retrain_once
from seqrec.pipeline.settings import DEFAULT_HISTORY_LEN, KafkaSecuritySettings
from seqrec.pipeline.serving.source import ClickEvent
from seqrec.pipeline.timespan import parse_span

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Cadence:
    """When to retrain during a replay: never, every N clicks, or every N seconds of log time."""

    every_clicks: int | None = None
    every_seconds: float | None = None

    @classmethod
    def parse(cls, text: str) -> "Cadence":
        """'never', '5000' (clicks), '6h', '1d', '30m' (log time)."""
        value = text.strip().lower()
        if value == "never":
            return cls()
        try:
            if value.isdigit():
                if int(value) > 0:
                    return cls(every_clicks=int(value))
            else:
                return cls(every_seconds=parse_span(value))
        except ValueError:
            pass
        raise ValueError(f"a cadence is never, a click count (5000) or a log-time span (6h, 1d), got {text!r}")

    @property
    def label(self) -> str:
        if self.every_clicks:
            return f"every {self.every_clicks} clicks"
        if self.every_seconds:
            return f"every {self.every_seconds / 3600:g} h"
        return "never"

    def boundaries(self, clicks: Sequence[ClickEvent]) -> list[int]:
        """Indices where a retrain happens (before the click at that index is served)."""
        if self.every_clicks:
            return list(range(self.every_clicks, len(clicks), self.every_clicks))
        if self.every_seconds:
            step, out = int(self.every_seconds * 1000), []
            next_at = clicks[0].timestamp + step if clicks else 0
            for i, c in enumerate(clicks):
                if c.timestamp >= next_at:
                    out.append(i)
                    next_at = c.timestamp - c.timestamp % step + step
            return out
        return []


@dataclass
class RunResult:
    name: str
    report: PrequentialReport
    versions: list[tuple[int, str]]  # (log time ms from which it served, version)
    batch_latency_ms: list[float] = field(default_factory=list)
    seconds: float = 0.0
    # Latency of work that waited behind a backlog (a replay's catch-up), drawn apart.
    catchup_latency_ms: list[float] = field(default_factory=list)
    latency_label: str = "latency per model call (ms)"

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, **self.report.to_dict(), "versions": self.versions,
                "batch_latency_ms": self.batch_latency_ms, "catchup_latency_ms": self.catchup_latency_ms,
                "latency_label": self.latency_label, "seconds": self.seconds}


@dataclass(frozen=True)
class EvalOptions:
    ks: tuple[int, ...] = (5, 10)
    window_ms: int | None = 86_400_000
    history_len: int = DEFAULT_HISTORY_LEN
    exclude_seen: bool = True
    batch_size: int = 256
    # The first share of the log only builds users' histories and is not scored (the model was
    # trained on it); 0 scores everything.
    warmup_fraction: float = 0.0
    retrain: TrainConfig = TrainConfig(epochs=3, patience=2, progress=False)
    gate: GatePolicy = GatePolicy(refit_epochs=1)


def evaluate_in_process(
    clicks: Sequence[ClickEvent], checkpoint: Path, cadence: Cadence, options: EvalOptions, name: str,
    progress: bool = True,
) -> RunResult:
    """Serve the log in-process from `checkpoint`, retraining on the clicks so far at each
    cadence boundary with the retraining job's own code; score prequentially."""
    started = time.monotonic()
    k = max(options.ks)
    with tempfile.TemporaryDirectory(prefix="seqrec-eval-") as tmp:
        store = ModelStore(Path(tmp) / "store")
        store.publish(checkpoint)
        recommender = Recommender.from_checkpoint(store.checkpoint_path(store.latest()))
        versions = [(clicks[0].timestamp if clicks else 0, recommender.version)]
        latencies: list[float] = []

        def recommend(histories: Sequence[Sequence[str]]) -> list[list[str]]:
            t0 = time.perf_counter()
            lists = recommender.recommend_ids(histories, k, options.exclude_seen)
            latencies.append((time.perf_counter() - t0) * 1000)
            return lists

        table: dict[str, Any] = {}
        shown: dict[str, list[str]] = {}
        cut = int(len(clicks) * options.warmup_fraction)
        scored_users = {c.user_id for c in clicks[cut:]}
        edges = [0, *(b for b in cadence.boundaries(clicks) if b > cut), len(clicks)]
        for start, end in zip(edges, edges[1:]):
            if start > 0:
                outcome = retrain_once(clicks[:start], store, policy=options.gate, train_config=options.retrain,
                                       work_dir=Path(tmp) / f"retrain-{start}")
                log.info("%s at click %d: %s", name, start, outcome.line())
                if outcome.published:
                    recommender = Recommender.from_checkpoint(store.checkpoint_path(store.latest()))
                    versions.append((clicks[start].timestamp, recommender.version))
            shown.update(simulate_serving(clicks[start:end], recommend, history_len=options.history_len,
                                          batch_size=options.batch_size, table=table, first_offset=start,
                                          answer_from=max(cut - start, 0), users_after=scored_users,
                                          progress=progress))
    report = score_shown_lists(clicks, shown, ks=options.ks, window_ms=options.window_ms, score_from=cut)
    return RunResult(name, report, versions, latencies, time.monotonic() - started)


def evaluate_through_kafka(
    clicks: Sequence[ClickEvent], bootstrap: str, clicks_topic: str, recommendations_topic: str,
    options: EvalOptions, name: str = "kafka", speed: float | None = None, timeout_s: float = 300.0,
    progress: bool = True, security: KafkaSecuritySettings | None = None,
) -> RunResult:
    """Replay the log into a running worker's clicks topic, read its answers back, score them
    with the same code as the in-process path."""
    started = time.monotonic()
    consumer = open_client(KafkaConsumer, bootstrap, security, group_id=None, enable_auto_commit=False,
                           isolation_level="read_committed")  # a worker under exactly_once
    try:
        # Fix the start position on every partition before the first click goes out.
        partitions = consumer.partitions_for_topic(recommendations_topic)
        if not partitions:
            raise ValueError(f"topic {recommendations_topic!r} does not exist on {bootstrap}: is a worker running?")
        tps = [TopicPartition(recommendations_topic, p) for p in sorted(partitions)]
        consumer.assign(tps)
        consumer.seek_to_end(*tps)
        for tp in tps:
            consumer.position(tp)
        replay_to_kafka(clicks, bootstrap, clicks_topic, speed, progress=progress, security=security)
        wanted = {c.event_id for c in clicks}
        shown: dict[str, list[str]] = {}
        versions: list[tuple[int, str]] = []
        latencies: list[float] = []
        deadline = time.monotonic() + timeout_s
        while wanted - shown.keys() and time.monotonic() < deadline:
            for records in consumer.poll(timeout_ms=500, max_records=5000).values():
                for record in records:
                    rec = _decode_json(record.value)
                    if rec is None or rec.get("event_id") not in wanted or rec["event_id"] in shown:
                        continue
                    shown[rec["event_id"]] = [i["item_id"] for i in rec.get("items", [])]
                    latencies.append(float(rec.get("latency_ms", 0.0)))
                    if not versions or versions[-1][1] != rec.get("model_version"):
                        versions.append((int(record.timestamp), str(rec.get("model_version"))))
    finally:
        consumer.close()
    missing = len(wanted - shown.keys())
    if missing:
        log.warning("%d of %d clicks got no recommendation within %.0f s", missing, len(wanted), timeout_s)
    report = score_shown_lists(clicks, shown, ks=options.ks, window_ms=options.window_ms,
                               score_from=int(len(clicks) * options.warmup_fraction))
    return RunResult(name, report, versions, latencies, time.monotonic() - started)


def _decode_json(raw: bytes | None) -> dict[str, Any] | None:
    try:
        value = json.loads(raw) if raw else None
    except ValueError:
        return None
    return value if isinstance(value, dict) else None
