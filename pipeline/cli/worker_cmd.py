"""`seqrec worker`: run one streaming worker (or dump a stopped worker's table)."""

from __future__ import annotations

import json
from pathlib import Path

import click

from seqrec.pipeline.cli.options import pass_settings, setting_option
from seqrec.pipeline.settings import Settings


@click.command("worker")
@setting_option("--checkpoint", setting="serving.checkpoint", type=click.Path(dir_okay=False, path_type=Path))
@setting_option("--model-store", setting="serving.model_store")
@setting_option("--record-dir", setting="record.dir", type=click.Path(file_okay=False, path_type=Path))
@setting_option("--model-poll", setting="serving.model_poll_s", type=click.FloatRange(min=0.1))
@setting_option("--brokers", setting="kafka.bootstrap_servers")
@setting_option("--broker-wait", setting="kafka.broker_wait_s", type=click.FloatRange(min=0.1))
@setting_option("--app-id", setting="app_id")
@setting_option("--datadir", setting="store.datadir", type=click.Path(file_okay=False, path_type=Path))
@setting_option("--web-port", setting="web.port", type=int)
@setting_option("--web/--without-web", setting="web.enabled")
@setting_option("--recommend-api/--without-recommend-api", setting="web.recommend_api")
@setting_option("--clicks-topic", setting="kafka.clicks_topic")
@setting_option("--recommendations-topic", setting="kafka.recommendations_topic")
@setting_option("--dead-letter-topic", setting="kafka.dead_letter_topic")
@setting_option("--partitions", setting="kafka.partitions", type=int)
@setting_option("--max-batch", setting="batching.max_size", type=int)
@setting_option("--max-wait-ms", setting="batching.max_wait_ms", type=float)
@setting_option("--top-k", setting="serving.top_k", type=int)
@setting_option("--exclude-seen/--include-seen", setting="serving.exclude_seen")
@setting_option("--history-len", setting="store.history_len", type=int)
@setting_option("--session-gap", setting="store.session_gap_s", type=float)
@setting_option("--standby-replicas", setting="store.standby_replicas", type=int)
@setting_option("--session-timeout", setting="kafka.session_timeout_s", type=float)
@setting_option("--heartbeat-interval", setting="kafka.heartbeat_interval_s", type=float)
@setting_option("--rebalance-timeout", setting="kafka.rebalance_timeout_s", type=float)
@setting_option("--commit-interval", setting="kafka.commit_interval_s", type=float)
@setting_option("--device", setting="serving.device")
@setting_option("--torch-threads", setting="serving.torch_threads", type=int)
@setting_option("--inference", setting="serving.inference", type=click.Choice(["thread", "process"]))
@setting_option("--guarantee", setting="serving.guarantee", type=click.Choice(["at_least_once", "exactly_once"]))
@setting_option("--log-level", setting="log_level", type=click.Choice(["debug", "info", "warning", "error"]))
@click.option("--dump-state", is_flag=True, help="Print the table in --datadir as JSON lines (worker stopped) and exit.")
@pass_settings
def worker(settings: Settings, dump_state: bool) -> None:
    """Serve recommendations for the clicks topic: one Faust worker.

    Every setting comes from the environment (SEQREC_..., one variable each, shown with each
    option; docs/configuration.md lists them all); an option given wins over the environment.
    """
    if dump_state:
        from seqrec.pipeline.serving.state import iter_rocksdb_table

        for partition, user, state in iter_rocksdb_table(settings.store.datadir, settings.table_name):
            click.echo(json.dumps({"partition": partition, "user_id": user, **state.to_dict()}))
        return
    from seqrec.pipeline.serving.worker import run_worker

    run_worker(settings, torch_threads=settings.serving.torch_threads)
