"""Run one streaming worker: load the model, declare the topics, build and wire the app, and
hand the loop to Faust's Worker (which handles SIGTERM/SIGINT as a graceful shutdown)."""

from __future__ import annotations

import logging
import sys
import time
from typing import Any

from seqrec.pipeline.serving.app import build_app
from seqrec.pipeline.serving.agents import wire
from seqrec.pipeline.errors import BrokerError, ConfigError
from seqrec.pipeline.kafka_security import open_client
from seqrec.pipeline.settings import KafkaSecuritySettings
from seqrec.pipeline.lifecycle.hotswap import follow_model_store, serving_checkpoint
from seqrec.pipeline.serving.telemetry import Health, Metrics
from seqrec.pipeline.serving.preflight import preflight
from seqrec.pipeline.serving.runner import Runner, load_recommender
from seqrec.pipeline.settings import Settings

log = logging.getLogger(__name__)


def ensure_topics(settings: Settings, timeout_s: float = 30.0) -> dict[str, int]:
    """Create the clicks, recommendations and dead-letter topics if missing (same partition
    count), instead of relying on the broker's auto-creation with its defaults; return each
    topic's partition count."""
    from kafka.admin import KafkaAdminClient
    from kafka.errors import KafkaError, TopicAlreadyExistsError

    k = settings.kafka
    names = [k.clicks_topic, k.recommendations_topic, k.dead_letter_topic]
    admin = open_client(KafkaAdminClient, k.bootstrap_servers, k.security, request_timeout_ms=int(timeout_s * 1000))
    try:
        existing = set(admin.list_topics())
        missing = [n for n in names if n not in existing]
        if missing:
            spec = {"num_partitions": k.partitions, "replication_factor": k.replication_factor}
            try:
                admin.create_topics({n: dict(spec) for n in missing})
            except TopicAlreadyExistsError:  # another worker created it first
                pass
    except KafkaError as exc:
        raise BrokerError(f"cannot create topics {names}: {exc}") from exc
    finally:
        admin.close()
    return partition_counts(k.bootstrap_servers, names, timeout_s, k.security)


def partition_counts(bootstrap: str, names: list[str], timeout_s: float,
                     security: KafkaSecuritySettings | None = None) -> dict[str, int]:
    from kafka import KafkaConsumer

    consumer = open_client(KafkaConsumer, bootstrap, security, group_id=None, enable_auto_commit=False)
    try:
        counts: dict[str, int] = {}
        deadline = time.monotonic() + timeout_s
        while len(counts) < len(names) and time.monotonic() < deadline:
            for name in names:
                partitions = consumer.partitions_for_topic(name)
                if partitions:
                    counts[name] = len(partitions)
            if len(counts) < len(names):
                time.sleep(0.2)
        return counts
    finally:
        consumer.close()


def plain_logging_config(level: str) -> dict[str, Any] | None:
    """The worker's logging when stderr is not a terminal: no colour codes. Faust's colour
    formatter asks whether *stdout* is a terminal but writes to stderr, so `seqrec worker 2>log`
    from a shell filled the log with ANSI codes. None keeps Faust's colours on a terminal."""
    if sys.stderr.isatty():
        return None
    from mode.utils.logging import DEFAULT_FORMAT

    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"plain": {"()": "mode.utils.logging.DefaultFormatter", "format": DEFAULT_FORMAT}},
        "handlers": {"default": {"class": "logging.StreamHandler", "formatter": "plain", "stream": "ext://sys.stderr"}},
        "root": {"level": level.upper(), "handlers": ["default"]},
    }


def run_worker(settings: Settings, *, torch_threads: int | None = None) -> None:
    """Serve until stopped. Blocks; exits the process through Faust's Worker."""
    from faust.worker import Worker

    datadir_lock = preflight(settings)  # held (open) for the life of the process
    checkpoint = serving_checkpoint(settings)
    if torch_threads:
        import torch

        torch.set_num_threads(torch_threads)
    health = Health()
    metrics = Metrics()
    model = load_recommender(checkpoint, settings.serving)
    health.model_loaded = True
    log.info("model loaded: version=%s checkpoint=%s", model.version, checkpoint)
    runner = Runner(model, top_k=settings.serving.top_k, exclude_seen=settings.serving.exclude_seen)
    counts = ensure_topics(settings)
    k = settings.kafka
    clicks_n = counts.get(k.clicks_topic)
    same = clicks_n is not None and counts.get(k.recommendations_topic) == clicks_n
    if settings.serving.guarantee == "exactly_once" and not (same and counts.get(k.dead_letter_topic) == clicks_n):
        raise ConfigError(f"exactly_once needs {k.recommendations_topic} and {k.dead_letter_topic} with the "
                          f"partition count of {k.clicks_topic} ({clicks_n}); they have {counts.get(k.recommendations_topic)} "
                          f"and {counts.get(k.dead_letter_topic)}")
    app = build_app(settings)
    wire(app, settings, runner, metrics, health, same_partitioning=same)
    if settings.web.recommend_api and settings.web.enabled:
        from seqrec.pipeline.serving.request_api import wire_request_api

        wire_request_api(app, settings, app.tables[settings.table_name], metrics, health)
    if settings.serving.model_store is not None:
        follow_model_store(app, settings, runner, metrics)
    worker = Worker(app, loglevel=settings.log_level, quiet=True, redirect_stdouts=False,
                    logging_config=plain_logging_config(settings.log_level))
    # Faust always makes a terminal spinner, whose handler sets the root logger to DEBUG: every
    # debug call in aiokafka and Faust then builds a LogRecord (about 5 per click, measured).
    worker.spinner = None
    worker.execute_from_commandline()


__all__ = ["ensure_topics", "run_worker"]
