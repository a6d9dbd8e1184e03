"""Metrics and health: Prometheus series of the worker and its readiness.

Served by the Faust web server of each worker (pipeline/serving/agents.py wires the pages):
    GET /metrics   Prometheus text format
    GET /healthz   200 while the process runs (liveness)
    GET /ready     200 only while the worker can serve now (model loaded, broker reachable,
                   partitions assigned, table recovered, no rebalance under way), else 503
    GET /users/{user_id}/recommendations   the request API, when enabled (serving/request_api.py)

Every metric lives in the worker's own `CollectorRegistry`, so tests and benchmarks can make
several `Metrics` in one process.
"""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from seqrec.pipeline.serving.source import REASONS

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)
# finer at the low end than _LATENCY_BUCKETS: most stages take well under a millisecond
_STAGE_BUCKETS = (0.0001, 0.0002, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5,
                  1.0, 2.0, 5.0, 10.0)

# A click's path through the worker, in order. The first three are observed once per click,
# the rest once per batch (every click of the batch pays that time).
PER_CLICK_STAGES = ("consume", "accept", "batch_wait")
PER_BATCH_STAGES = ("changelog", "inference", "encode", "produce", "ack")
STAGES = PER_CLICK_STAGES + PER_BATCH_STAGES


class Metrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        self.events_in = Counter("seqrec_events_in", "Messages taken from the clicks topic.", registry=r)
        self.recommendations_out = Counter(
            "seqrec_recommendations_out", "Recommendations acknowledged by the broker.", registry=r
        )
        self.dead_letters = Counter(
            "seqrec_dead_letters", "Clicks sent to the dead-letter topic, by reason.", ["reason"], registry=r
        )
        for reason in REASONS:  # export zeros, so a dashboard sees every reason from the start
            self.dead_letters.labels(reason)
        self.replayed = Counter(
            "seqrec_replayed_clicks",
            "Clicks seen again after a restart or rebalance (already in the history; answered again "
            "unless this worker had already taken them up).",
            registry=r,
        )
        self.duplicates = Counter(
            "seqrec_duplicate_clicks",
            "Clicks whose event_id the user's recent clicks already had (not added to the history; "
            "answered again).",
            registry=r,
        )
        self.batch_size = Histogram(
            "seqrec_batch_size", "Histories per inference batch (clicks and API requests).",
            buckets=_BATCH_BUCKETS, registry=r,
        )
        self.api_requests = Counter(
            "seqrec_api_requests", "Request API answers given by this worker, by HTTP status.", ["status"],
            registry=r,
        )
        self.inference_seconds = Histogram(
            "seqrec_inference_seconds", "One batched forward pass, top-K included.",
            buckets=_LATENCY_BUCKETS, registry=r,
        )
        self.worker_seconds = Histogram(
            "seqrec_worker_latency_seconds",
            "Click taken from the stream until its recommendation was handed to the producer.",
            buckets=_LATENCY_BUCKETS, registry=r,
        )
        self.end_to_end_seconds = Histogram(
            "seqrec_end_to_end_seconds",
            "Click's Kafka timestamp until its recommendation was handed to the producer.",
            buckets=_LATENCY_BUCKETS, registry=r,
        )
        self.stage_seconds = Histogram(
            "seqrec_stage_seconds",
            "Time in one stage of a click's path (consume, accept, batch_wait: per click; "
            "changelog, inference, encode, produce, ack: per batch).",
            ["stage"], buckets=_STAGE_BUCKETS, registry=r,
        )
        self.stage_click_seconds = Counter(
            "seqrec_stage_click_seconds",
            "Seconds spent in a stage summed over the clicks that paid them (a batch's stage "
            "time counts once per click in it): divided by the clicks, each stage's share of a "
            "click's time.",
            ["stage"], registry=r,
        )
        self._stages = {s: (self.stage_seconds.labels(s), self.stage_click_seconds.labels(s)) for s in STAGES}
        self.consumer_lag = Gauge(
            "seqrec_consumer_lag", "Messages behind the partition's end, per clicks partition.",
            ["partition"], registry=r,
        )
        self.pending = Gauge("seqrec_pending_clicks", "Clicks accepted and not yet answered.", registry=r)
        self.model_version = Gauge(
            "seqrec_model_version_info", "The model version being served (value 1).", ["version"], registry=r
        )
        self.ready = Gauge("seqrec_ready", "1 when the worker is ready to serve.", registry=r)
        self.model_swaps = Counter(
            "seqrec_model_swaps", "Hot-swaps to a new store version, by outcome (swapped or refused).",
            ["outcome"], registry=r,
        )
        for outcome in ("swapped", "refused"):
            self.model_swaps.labels(outcome)

    def observe_batch_stage(self, stage: str, seconds: float, clicks: int) -> None:
        """One batch spent `seconds` in `stage`; each of its `clicks` waited that long."""
        histogram, total = self._stages[stage]
        histogram.observe(seconds)
        total.inc(seconds * clicks)

    def observe_click_stage(self, stage: str, seconds: list[float]) -> None:
        """Each click of a batch spent its own time in `stage`."""
        histogram, total = self._stages[stage]
        for value in seconds:
            histogram.observe(value)
        total.inc(sum(seconds))

    def set_model_version(self, version: str) -> None:
        self.model_version.clear()
        self.model_version.labels(version).set(1)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


@dataclass
class Health:
    """Readiness: whether this worker can serve clicks now. `/healthz` is liveness only."""

    model_loaded: bool = False
    recovered: bool = False
    rebalancing: bool = False
    broker_reachable: bool = False
    partitions: tuple[int, ...] = ()  # clicks partitions assigned to this worker
    detail: str = "starting"

    @property
    def blocker(self) -> str | None:
        """The first reason the worker cannot serve now, or None."""
        if not self.model_loaded:
            return "loading model"
        if not self.broker_reachable:
            return "broker unreachable"
        if self.rebalancing:
            return "rebalancing"
        if not self.recovered:
            return "recovering table"
        if not self.partitions:
            return "no partitions assigned"
        return None

    @property
    def ready(self) -> bool:
        return self.blocker is None

    def as_dict(self) -> dict[str, object]:
        return {
            "ready": self.ready,
            "model_loaded": self.model_loaded,
            "broker_reachable": self.broker_reachable,
            "recovered": self.recovered,
            "rebalancing": self.rebalancing,
            "partitions": list(self.partitions),
            "detail": self.detail,
        }


__all__ = ["Health", "Metrics", "PER_BATCH_STAGES", "PER_CLICK_STAGES", "STAGES"]
