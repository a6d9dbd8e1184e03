"""Retraining with a quality gate.

One run: take every click up to now, hold out the most recent share, train a model on the rest
(warm-started from the serving model, its catalogue grown with the new items), score the new and
the serving model on the holdout the same way (prequential, `pipeline.evaluation.prequential`), and publish
only when the new one is not worse by more than the tolerance. A model that passes is refit on
all clicks for a few epochs before it is published, so the freshest items and habits are in it.
A failed run raises and leaves the store untouched.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import logging
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from kafka import KafkaConsumer, TopicPartition

from seqrec.model.checkpoint import load_checkpoint
from seqrec.model.config import ModelConfig
from seqrec.model.data import SequenceDataset, sequences_from_clicks
from seqrec.model.inference import Recommender
from seqrec.model.train import TrainConfig, TrainResult, train, with_training_options
from seqrec.model.warmstart import grow_model
from seqrec.pipeline.kafka_security import open_client
from seqrec.pipeline.lifecycle.model_store import ModelStore
from seqrec.pipeline.evaluation.prequential import score_shown_lists, simulate_serving
from seqrec.pipeline.settings import DEFAULT_HISTORY_LEN, KafkaSecuritySettings
from seqrec.pipeline.serving.source import ClickEvent, Rejection, SourceLimits, decode_click

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class GatePolicy:
    metric: str = "NDCG@10"  # prequential metric on the holdout
    tolerance: float = 0.0  # publish when new >= serving - tolerance (a first model: >= popularity - tolerance)
    holdout_fraction: float = 0.1  # the most recent share of clicks, never trained on before the gate
    refit_epochs: int = 2  # epochs on all clicks after the gate passes (0: publish the gated model)
    history_len: int = DEFAULT_HISTORY_LEN  # as the workers keep it
    exclude_seen: bool = True

    def __post_init__(self) -> None:
        if not 0 < self.holdout_fraction < 1:
            raise ValueError(f"holdout_fraction must be in (0, 1), got {self.holdout_fraction}")
        if "@" not in self.metric:
            raise ValueError(f"metric must look like NDCG@10, got {self.metric!r}")

    @property
    def k(self) -> int:
        """The list length the metric reads (10 for NDCG@10)."""
        return int(self.metric.split("@")[1])


@dataclass
class RetrainOutcome:
    published: bool
    version: str | None  # the published version, else None
    new_score: float
    serving_score: float | None
    serving_version: str | None
    reason: str
    n_train: int
    n_holdout: int
    seconds: float
    details: dict[str, Any] = field(default_factory=dict)
    popularity_score: float | None = None  # the floor a first model must reach (no serving model)

    def line(self) -> str:
        serving = f"{self.serving_score:.4f} ({self.serving_version})" if self.serving_score is not None else "none"
        if self.popularity_score is not None:
            serving += f", popularity {self.popularity_score:.4f}"
        verdict = f"published {self.version}" if self.published else "kept the serving model"
        return (f"retrain: {self.n_train:,} clicks trained, {self.n_holdout:,} held out; new {self.new_score:.4f} "
                f"vs serving {serving}: {verdict} ({self.reason}) in {self.seconds:.0f} s")


def clicks_to_dataset(clicks: Sequence[ClickEvent]) -> SequenceDataset:
    return sequences_from_clicks(((c.user_id, c.item_id, c.timestamp / 1000) for c in clicks), name="clicks")


def holdout_score(recommender: Recommender, clicks: Sequence[ClickEvent], cut: int, policy: GatePolicy) -> float:
    recommend = functools.partial(recommender.recommend_ids, k=policy.k, exclude_seen=policy.exclude_seen)
    return _score(recommend, clicks, cut, policy)


def popularity_score(clicks: Sequence[ClickEvent], cut: int, policy: GatePolicy) -> float:
    """The holdout score of the training part's most clicked items (the user's own left out as the
    model's are): what any model that learnt something beats."""
    ranked = [item for item, _ in Counter(c.item_id for c in clicks[:cut]).most_common()]

    def top(history: Sequence[str]) -> list[str]:
        seen = set(history) if policy.exclude_seen else set()
        return list(itertools.islice((item for item in ranked if item not in seen), policy.k))

    def recommend(histories: Sequence[Sequence[str]]) -> list[list[str]]:
        return [top(h) for h in histories]

    return _score(recommend, clicks, cut, policy)


def _score(recommend: Callable[[Sequence[Sequence[str]]], list[list[str]]], clicks: Sequence[ClickEvent],
           cut: int, policy: GatePolicy) -> float:
    shown = simulate_serving(clicks, recommend, answer_from=cut, history_len=policy.history_len)
    report = score_shown_lists(clicks, shown, ks=(policy.k,), score_from=cut)
    return report.overall[policy.metric]


def retrain_once(
    clicks: Sequence[ClickEvent],
    store: ModelStore,
    *,
    policy: GatePolicy = GatePolicy(),
    train_config: TrainConfig = TrainConfig(epochs=20, patience=3),
    model_config: ModelConfig | None = None,
    work_dir: str | Path | None = None,
    publish: bool = True,
    warm_start: bool = True,
    train_fn: Callable[..., TrainResult] = train,
) -> RetrainOutcome:
    """One retraining run over `clicks` (any order; sorted by time here). Without `warm_start`
    the new model starts from scratch (then `model_config` or the serving model's shape).
    `train_fn` runs both trainings (the gate's and the refit) with model.train.train's arguments
    and returns rank 0's result, e.g. in several processes (model.distributed.run); the gate,
    the scoring and the publishing stay in this process."""
    started = time.monotonic()
    clicks = sorted(clicks, key=lambda c: c.timestamp)
    cut = int(len(clicks) * (1 - policy.holdout_fraction))
    if cut < 1 or cut >= len(clicks):
        raise ValueError(f"{len(clicks)} clicks are too few to hold out {policy.holdout_fraction:.0%}")
    # The run's files (two training folders) go away with it unless the caller keeps them.
    with contextlib.nullcontext(work_dir) if work_dir else tempfile.TemporaryDirectory(prefix="seqrec-retrain-") as wd:
        work = Path(wd)
        serving_version = store.latest()
        serving = load_checkpoint(store.checkpoint_path(serving_version)) if serving_version else None
        if serving is not None:  # train on with the serving model's loss and schedule (issue 31)
            train_config = with_training_options(train_config, serving.extra.get("train_config"))
        train_part = clicks_to_dataset(clicks[:cut])
        init = grow_model(serving.model, serving.item_map, train_part.item_ids()) if serving and warm_start else None
        if init is None and model_config is None:
            model_config = replace(serving.config, n_items=1) if serving else ModelConfig(n_items=1)
        gated = train_fn(train_part, None if init else model_config, train_config, work / "gate", init=init)
        # Read once: scored here, then refit below. grow_model copied the serving weights, so
        # `serving` is still the model that serves.
        fitted = load_checkpoint(gated.best_path)
        new_score = holdout_score(Recommender.from_loaded(fitted, device="cpu"), clicks, cut, policy)
        serving_score = None
        if serving is not None:
            serving_score = holdout_score(Recommender.from_loaded(serving, device="cpu"), clicks, cut, policy)
        n_holdout = len(clicks) - cut
        outcome = RetrainOutcome(False, None, new_score, serving_score, serving_version, "", cut, n_holdout, 0.0)
        if serving is None:  # nothing to compare with: a failed training must still not serve
            outcome.popularity_score = popularity_score(clicks, cut, policy)
        if serving_score is not None and new_score < serving_score - policy.tolerance:
            outcome.reason = f"{policy.metric} below serving - {policy.tolerance}"
        elif outcome.popularity_score is not None and new_score < outcome.popularity_score - policy.tolerance:
            outcome.reason = (f"{policy.metric} below the most popular items' - {policy.tolerance}: "
                              "a first model must beat them")
        elif not publish:
            outcome.reason = "dry run"
        else:
            best = gated.best_path
            if policy.refit_epochs > 0:
                everything = clicks_to_dataset(clicks)
                refit_init = grow_model(fitted.model, fitted.item_map, everything.item_ids())
                refit_cfg = replace(train_config, epochs=policy.refit_epochs, patience=policy.refit_epochs)
                best = train_fn(everything, None, refit_cfg, work / "refit", init=refit_init).best_path
            outcome.published, outcome.version = True, store.publish(best)
            outcome.reason = "first model" if serving_score is None else f"{policy.metric} within tolerance"
    outcome.seconds = time.monotonic() - started
    log.info(outcome.line())
    return outcome


# ---- where the clicks come from -------------------------------------------------------------------

_ANY_TIME = SourceLimits(min_timestamp_ms=0, max_future_skew_ms=10**15)


def read_clicks_topic(bootstrap: str, topic: str, stall_timeout_s: float = 60.0,
                      security: KafkaSecuritySettings | None = None) -> list[ClickEvent]:
    """Every valid click in `topic`, from the beginning to the end offsets at call time. Gives up
    only when no record arrives for `stall_timeout_s`, however long the topic."""
    consumer = open_client(KafkaConsumer, bootstrap, security, group_id=None, enable_auto_commit=False)
    try:
        partitions = consumer.partitions_for_topic(topic) or set()
        tps = [TopicPartition(topic, p) for p in sorted(partitions)]
        if not tps:
            raise ValueError(f"topic {topic!r} does not exist on {bootstrap}")
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        end = consumer.end_offsets(tps)
        clicks: list[ClickEvent] = []
        last_progress = time.monotonic()
        while any(consumer.position(tp) < end[tp] for tp in tps):
            if time.monotonic() - last_progress > stall_timeout_s:
                raise TimeoutError(f"reading {topic} stalled for {stall_timeout_s:.0f} s at {len(clicks):,} clicks")
            for records in consumer.poll(timeout_ms=500, max_records=5000).values():
                last_progress = time.monotonic()
                for r in records:
                    if r.offset >= end[TopicPartition(topic, r.partition)]:
                        continue  # written after this run started: the next run takes it
                    decoded = decode_click(r.value, None, now_ms=0, limits=_ANY_TIME, require_key=False)
                    if not isinstance(decoded, Rejection):
                        clicks.append(decoded)
        return clicks
    finally:
        consumer.close()
