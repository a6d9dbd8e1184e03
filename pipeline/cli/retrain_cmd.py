"""`seqrec retrain`: the periodic retraining job with its quality gate."""

from __future__ import annotations

import functools
import logging
import sys
import time
from collections.abc import Callable
from pathlib import Path

import click
from click.core import ParameterSource

from seqrec.model import distributed
from seqrec.model.attention import attention_kinds
from seqrec.model.config import ModelConfig
from seqrec.model.train import TrainConfig, train
from seqrec.pipeline.cli.store_cmd import store_option
from seqrec.pipeline.cli.options import pass_settings, setting_option
from seqrec.pipeline.cli.replay_cmd import bootstrap_option
from seqrec.pipeline.evaluation.clicklog import read_click_log
from seqrec.pipeline.lifecycle.model_store import ModelStore
from seqrec.pipeline.lifecycle.retrain import GatePolicy, read_clicks_topic, retrain_once
from seqrec.pipeline.serving.source import ClickEvent
from seqrec.pipeline.settings import Settings
from seqrec.pipeline.storage.click_window import TimeWindow, read_window

log = logging.getLogger(__name__)


@click.command()
@store_option
@click.option("--log", "log_path", type=click.Path(exists=True, path_type=Path), default=None,
              help="Read interactions from a click log (file or directory) ...")
@setting_option("--archive", setting="archive.url",
                help="... or from the click archive (`seqrec archive`) at this path or URL, a window of it ...")
@click.option("--window", default=None, help="With --archive: the last span of event time to read (90d, 12h), "
                                             "up to --until. Default: the whole archive.")
@click.option("--since", default=None, help="With --archive: read from this date or date-time (UTC), instead of --window.")
@click.option("--until", default=None, help="With --archive: read up to this date or date-time (UTC; default now).")
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
@click.option("--nproc", type=click.IntRange(min=1), default=1, show_default=True,
              help="Training processes on this machine for each run's trainings (DistributedDataParallel: one GPU "
                   "each on CUDA, gloo on CPU; the training batch is split evenly over them). Reading, the gate and "
                   "publishing stay in this process; retrain does not run under torchrun.")
@pass_settings
def retrain(settings: Settings, log_path: Path | None, window: str | None, since: str | None, until: str | None,
            interval: float | None, attention: str, epochs: int, metric: str, tolerance: float, holdout: float, dry_run: bool,
            nproc: int) -> None:
    """Retrain on all interactions so far and publish the new model if it passes the gate.

    The new model starts from the serving one (new items get fresh embeddings), is scored against
    it on the most recent clicks it did not train on, and replaces it only when not worse."""
    read_clicks = _click_source(settings, log_path, window, since, until)
    store = ModelStore(settings.serving.store_url())
    policy = GatePolicy(metric=metric, tolerance=tolerance, holdout_fraction=holdout,
                        history_len=settings.store.history_len)  # the gate keeps histories as the workers do
    train_config = TrainConfig(epochs=epochs, patience=3, progress=sys.stderr.isatty())  # no bars in log files
    if distributed.under_torchrun():  # every rank would gate and publish: the gate belongs to one process
        raise click.UsageError("seqrec retrain starts its own training processes: run it with --nproc N, "
                               "not under torchrun")
    try:
        distributed.World(size=distributed.launch_size(nproc, None)).per_rank_batch(train_config.batch_size)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    train_fn = functools.partial(distributed.run, train, nproc=nproc)
    while True:
        try:  # reading is part of the run: a topic not there yet or a broker away fails only this run
            clicks = read_clicks()
            outcome = retrain_once(clicks, store, policy=policy, train_config=train_config,
                                   model_config=ModelConfig(n_items=1, attention=attention), publish=not dry_run,
                                   train_fn=train_fn)
            click.echo(outcome.line())
        except Exception as exc:  # a failed run leaves the serving model; a loop tries again later
            if interval is None:
                raise
            log.exception("retrain run failed; the serving model is untouched")
            click.echo(f"retrain failed: {exc}", err=True)
        if interval is None:
            return
        time.sleep(interval)


def _click_source(settings: Settings, log_path: Path | None, window: str | None, since: str | None,
                  until: str | None) -> Callable[[], list[ClickEvent]]:
    """What each run reads: --log, else the archive (--archive or SEQREC_ARCHIVE__URL) unless
    --topic is given, else the clicks topic. A window is read anew each run: it moves with now."""
    context = click.get_current_context()
    topic_given = context.get_parameter_source("topic") is ParameterSource.COMMANDLINE
    archive_given = context.get_parameter_source("archive") is ParameterSource.COMMANDLINE
    if sum((log_path is not None, topic_given, archive_given)) > 1:
        raise click.UsageError("give one of --log, --archive and --topic")
    use_archive = settings.archive.url is not None and not log_path and not topic_given
    if (window or since or until) and not use_archive:
        raise click.UsageError("--window, --since and --until read the click archive: give --archive too")
    if log_path:
        return lambda: read_click_log(log_path).clicks
    if use_archive:
        url = settings.archive.url

        def window_now() -> TimeWindow:
            return TimeWindow.from_options(window=window, since=since, until=until, now_ms=int(time.time() * 1000))

        try:  # checked here, so that a typo is one line before any run
            window_now()
        except ValueError as exc:
            raise click.UsageError(str(exc)) from None
        return lambda: read_window(url, window_now(), progress=sys.stderr.isatty())
    kafka = settings.kafka
    return lambda: read_clicks_topic(kafka.bootstrap_servers, kafka.clicks_topic, security=kafka.security)
