"""`seqrec retrain`: the periodic retraining job with its quality gate."""

from __future__ import annotations

import logging
import sys
import time
from pathlib import Path

import click
from click.core import ParameterSource

from seqrec.model.attention import attention_kinds
from seqrec.model.config import ModelConfig
from seqrec.model.train import TrainConfig
from seqrec.pipeline.cli.store_cmd import store_option
from seqrec.pipeline.cli.options import pass_settings, setting_option
from seqrec.pipeline.cli.replay_cmd import bootstrap_option
from seqrec.pipeline.evaluation.clicklog import read_click_log
from seqrec.pipeline.lifecycle.model_store import DirectoryModelStore
from seqrec.pipeline.lifecycle.retrain import GatePolicy, read_clicks_topic, retrain_once
from seqrec.pipeline.settings import Settings

log = logging.getLogger(__name__)


@click.command()
@store_option
@click.option("--log", "log_path", type=click.Path(exists=True, path_type=Path), default=None,
              help="Read interactions from a click log (file or directory) ...")
@setting_option("--topic", setting="kafka.clicks_topic",
                help="... or else from the clicks topic, from its beginning")
@bootstrap_option
@click.option("--interval", type=click.FloatRange(min=1), default=None,
              help="Run every this many seconds until stopped; without it, run once (for cron).")
@click.option("--attention", type=click.Choice(attention_kinds()), default="softmax", show_default=True,
              help="Attention kind of a first model (later runs keep the serving model's).")
@click.option("--epochs", type=click.IntRange(min=1), default=20, show_default=True)
@click.option("--metric", default="NDCG@10", show_default=True, help="Gate metric on the holdout.")
@click.option("--tolerance", type=click.FloatRange(min=0), default=0.0, show_default=True,
              help="Publish when new >= serving - tolerance (a first model: >= the most popular items' score - tolerance).")
@click.option("--holdout", type=click.FloatRange(0.01, 0.5), default=0.1, show_default=True,
              help="Most recent share of clicks held out for the gate.")
@click.option("--dry-run", is_flag=True, help="Train and score, but publish nothing.")
@pass_settings
def retrain(settings: Settings, log_path: Path | None, interval: float | None,
            attention: str, epochs: int, metric: str, tolerance: float, holdout: float, dry_run: bool) -> None:
    """Retrain on all interactions so far and publish the new model if it passes the gate.

    The new model starts from the serving one (new items get fresh embeddings), is scored against
    it on the most recent clicks it did not train on, and replaces it only when not worse."""
    if log_path and click.get_current_context().get_parameter_source("topic") is ParameterSource.COMMANDLINE:
        raise click.UsageError("give --log or --topic, not both")
    store = DirectoryModelStore(settings.serving.store_dir())
    policy = GatePolicy(metric=metric, tolerance=tolerance, holdout_fraction=holdout,
                        history_len=settings.store.history_len)  # the gate keeps histories as the workers do
    train_config = TrainConfig(epochs=epochs, patience=3, progress=sys.stderr.isatty())  # no bars in log files
    kafka = settings.kafka
    while True:
        try:  # reading is part of the run: a topic not there yet or a broker away fails only this run
            clicks = (read_click_log(log_path).clicks if log_path else
                      read_clicks_topic(kafka.bootstrap_servers, kafka.clicks_topic, security=kafka.security))
            outcome = retrain_once(clicks, store, policy=policy, train_config=train_config,
                                   model_config=ModelConfig(n_items=1, attention=attention), publish=not dry_run)
            click.echo(outcome.line())
        except Exception as exc:  # a failed run leaves the serving model; a loop tries again later
            if interval is None:
                raise
            log.exception("retrain run failed; the serving model is untouched")
            click.echo(f"retrain failed: {exc}", err=True)
        if interval is None:
            return
        time.sleep(interval)
