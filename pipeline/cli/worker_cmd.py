"""`seqrec worker`: run one streaming worker (or dump a stopped worker's table)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

# option name → (settings group, field); None as a value means "not given: keep env/default".
_OVERRIDES: dict[str, tuple[str | None, str]] = {
    "app_id": (None, "app_id"),
    "log_level": (None, "log_level"),
    "brokers": ("kafka", "bootstrap_servers"),
    "clicks_topic": ("kafka", "clicks_topic"),
    "recommendations_topic": ("kafka", "recommendations_topic"),
    "dead_letter_topic": ("kafka", "dead_letter_topic"),
    "partitions": ("kafka", "partitions"),
    "session_timeout": ("kafka", "session_timeout_s"),
    "heartbeat_interval": ("kafka", "heartbeat_interval_s"),
    "rebalance_timeout": ("kafka", "rebalance_timeout_s"),
    "commit_interval": ("kafka", "commit_interval_s"),
    "broker_wait": ("kafka", "broker_wait_s"),
    "datadir": ("store", "datadir"),
    "history_len": ("store", "history_len"),
    "session_gap": ("store", "session_gap_s"),
    "standby_replicas": ("store", "standby_replicas"),
    "max_batch": ("batching", "max_size"),
    "max_wait_ms": ("batching", "max_wait_ms"),
    "checkpoint": ("serving", "checkpoint"),
    "model_store": ("serving", "model_store"),
    "model_poll": ("serving", "model_poll_s"),
    "device": ("serving", "device"),
    "top_k": ("serving", "top_k"),
    "exclude_seen": ("serving", "exclude_seen"),
    "web_port": ("web", "port"),
    "web": ("web", "enabled"),
    "record_dir": ("record", "dir"),
}


def settings_from_options(**options: Any):
    """Settings from the environment (SEQREC_...), overridden by the options that were given."""
    from pipeline.settings import load_settings

    data = load_settings().model_dump()
    for name, value in options.items():
        if value is None or name not in _OVERRIDES:
            continue
        group, field = _OVERRIDES[name]
        (data if group is None else data[group])[field] = value
    return load_settings(**data)


@click.command("worker")
@click.option("--checkpoint", type=click.Path(dir_okay=False, path_type=Path), help="Model checkpoint to serve.")
@click.option("--model-store", type=click.Path(file_okay=False, path_type=Path),
              help="Model store to follow: serve its serving version and hot-swap to each new one.")
@click.option("--record-dir", type=click.Path(file_okay=False, path_type=Path),
              help="Log consumed clicks and produced recommendations here (rotated JSONL), for replay.")
@click.option("--model-poll", type=click.FloatRange(min=0.1), help="Seconds between looks at the model store.")
@click.option("--brokers", help="Kafka bootstrap servers, host:port[,host:port].")
@click.option("--broker-wait", type=click.FloatRange(min=0.1),
              help="Seconds to wait for the broker at start before giving up (default 10).")
@click.option("--app-id", help="Faust app id: consumer group and changelog prefix.")
@click.option("--datadir", type=click.Path(file_okay=False, path_type=Path), help="This worker's own RocksDB directory.")
@click.option("--web-port", type=int, help="Port of /metrics, /healthz, /ready (one per worker on a host).")
@click.option("--web/--without-web", default=None, help="Serve the metrics and health endpoints.")
@click.option("--clicks-topic")
@click.option("--recommendations-topic")
@click.option("--dead-letter-topic")
@click.option("--partitions", type=int, help="Partitions of the topics this worker creates.")
@click.option("--max-batch", type=int, help="Largest inference batch.")
@click.option("--max-wait-ms", type=float, help="Longest a click waits for its batch to fill.")
@click.option("--top-k", type=int)
@click.option("--exclude-seen/--include-seen", default=None)
@click.option("--history-len", type=int, help="Items kept per user.")
@click.option("--session-gap", type=float, help="Seconds of inactivity that start a new session.")
@click.option("--standby-replicas", type=int)
@click.option("--session-timeout", type=float, help="Kafka consumer session timeout (s).")
@click.option("--heartbeat-interval", type=float, help="Kafka heartbeat interval (s).")
@click.option("--rebalance-timeout", type=float, help="Kafka rebalance timeout (s).")
@click.option("--commit-interval", type=float, help="Seconds between offset commits.")
@click.option("--device", help="torch device (default: cuda when available, else cpu).")
@click.option("--torch-threads", type=int, help="torch intra-op threads (default: torch's).")
@click.option("--log-level", type=click.Choice(["debug", "info", "warning", "error"]))
@click.option("--dump-state", is_flag=True, help="Print the table in --datadir as JSON lines (worker stopped) and exit.")
def worker(torch_threads: int | None, dump_state: bool, **options: Any) -> None:
    """Serve recommendations for the clicks topic: one Faust worker.

    Every option can also come from the environment with the prefix SEQREC_ and "__" between
    group and field, e.g. SEQREC_KAFKA__BOOTSTRAP_SERVERS, SEQREC_BATCHING__MAX_SIZE,
    SEQREC_SERVING__CHECKPOINT (see docs/pipeline.md); options win over the environment.
    """
    settings = settings_from_options(**options)
    if dump_state:
        from pipeline.state import iter_rocksdb_table

        for partition, user, state in iter_rocksdb_table(settings.store.datadir, settings.table_name):
            click.echo(json.dumps({"partition": partition, "user_id": user, **state.to_dict()}))
        return
    from pipeline.worker import run_worker

    run_worker(settings, torch_threads=torch_threads)
