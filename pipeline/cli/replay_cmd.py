"""`seqrec export`, `seqrec replay` and `seqrec evaluate-replay`: logged traffic, replayed and scored."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import click

from seqrec.model.data import FORMATS
from seqrec.pipeline.evaluation.clicklog import export_dataset, read_click_log
from seqrec.pipeline.evaluation.offline_eval import Cadence, EvalOptions, evaluate_in_process, evaluate_through_kafka
from seqrec.pipeline.cli.options import pass_settings, setting_option
from seqrec.pipeline.evaluation.replay import parse_speed, replay_to_kafka
from seqrec.pipeline.settings import Settings

log_argument = click.argument("log", type=click.Path(exists=True, path_type=Path))
# The connection's security is settings.kafka.security, from SEQREC_KAFKA__SECURITY__* only.
bootstrap_option = setting_option("--bootstrap", setting="kafka.bootstrap_servers")


def _speed(ctx: click.Context, param: click.Parameter, value: str) -> float | None:
    try:
        return parse_speed(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


def _cadences(ctx: click.Context, param: click.Parameter, values: tuple[str, ...]) -> list[Cadence]:
    try:
        return [Cadence.parse(v) for v in values] or [Cadence()]
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


def _load_log(path: Path, limit: int | None):
    loaded = read_click_log(path)
    if loaded.bad_lines:
        click.echo(f"skipped {len(loaded.bad_lines)} malformed lines (first: {loaded.bad_lines[0].file}:"
                   f"{loaded.bad_lines[0].line}: {loaded.bad_lines[0].reason})", err=True)
    return loaded.clicks[:limit] if limit else loaded.clicks


@click.command()
@click.option("--data", "data_path", required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Dataset file (any supported format).")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default=None, help="Override format detection.")
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path), help="Click log directory.")
@click.option("--seed", default=0, show_default=True, help="Seed of the synthesised clock.")
def export(data_path: Path, fmt: str | None, out: Path, seed: int) -> None:
    """Turn a dataset into a click log (JSON lines, the click contract).

    Files with a clock (ml-100k, CSV logs) keep their timestamps; for the others each user's
    order is kept and users are interleaved over 30 days in sessions."""
    n, real_clock = export_dataset(data_path, out, fmt, seed)
    click.echo(f"wrote {n:,} clicks to {out} ({'real' if real_clock else 'synthesised'} timestamps)")


@click.command()
@log_argument
@setting_option("--topic", setting="kafka.clicks_topic")
@click.option("--speed", default="1x", show_default=True, callback=_speed,
              help="Log time divided by this (10x, 0.5x), or max for as fast as possible.")
@click.option("--limit", type=click.IntRange(min=1), default=None, help="Replay only the first N clicks.")
@click.option("--keep-timestamps", is_flag=True, help="Send the logged times instead of the send time.")
@bootstrap_option
@pass_settings
def replay(settings: Settings, log: Path, speed: float | None, limit: int | None, keep_timestamps: bool) -> None:
    """Replay a click log into Kafka on the logged schedule (a load test too)."""
    clicks = _load_log(log, limit)
    kafka = settings.kafka
    summary = replay_to_kafka(clicks, kafka.bootstrap_servers, kafka.clicks_topic, speed, restamp=not keep_timestamps,
                              security=kafka.security)
    click.echo(summary.line())


@click.command("evaluate-replay")
@log_argument
@click.option("--model", "models", multiple=True, required=True, metavar="[NAME=]CHECKPOINT",
              help="A model to evaluate; repeat to compare several side by side.")
@click.option("--retrain-every", "cadences", multiple=True, callback=_cadences, metavar="CADENCE",
              help="never, a click count (5000) or log time (6h, 1d); repeat to compare. Default never.")
@click.option("--retrain-epochs", type=click.IntRange(min=1), default=3, show_default=True,
              help="Epochs of each simulated retrain.")
@click.option("--gate-tolerance", type=click.FloatRange(min=0), default=0.0, show_default=True,
              help="A simulated retrain publishes when new >= serving - this (as `seqrec retrain --tolerance`).")
@click.option("--k", "ks", multiple=True, type=click.IntRange(min=1), default=(5, 10), show_default=True,
              help="Cut-offs for HR/NDCG/MRR.")
@click.option("--window", default="1d", show_default=True, help="Window of log time for metrics over time.")
@click.option("--limit", type=click.IntRange(min=1), default=None, help="Use only the first N clicks.")
@click.option("--warmup", type=click.FloatRange(0, 0.99), default=0.0, show_default=True,
              help="Share of the log (the models' training period) that only builds histories, unscored.")
@setting_option("--history-len", setting="store.history_len", type=click.IntRange(min=1))
@click.option("--via-kafka", is_flag=True, help="Replay into a running worker and score its answers instead.")
@setting_option("--clicks-topic", setting="kafka.clicks_topic")
@setting_option("--recommendations-topic", setting="kafka.recommendations_topic")
@click.option("--speed", default="max", show_default=True, callback=_speed, help="Replay speed with --via-kafka.")
@bootstrap_option
@click.option("--report", "report_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Write report.md, plots and report.json here.")
@click.option("--json", "as_json", is_flag=True, help="Print every number as JSON.")
@pass_settings
def evaluate_replay(settings: Settings, log: Path, models: tuple[str, ...], cadences: list[Cadence],
                    retrain_epochs: int, gate_tolerance: float, ks: tuple[int, ...], window: str, limit: int | None,
                    warmup: float, via_kafka: bool, speed: float | None, report_dir: Path | None,
                    as_json: bool) -> None:
    """Score models on logged traffic, prequentially (test, then learn).

    Each click is scored against the list shown after the user's previous click. In-process by
    default (fast); --via-kafka replays into a running worker and scores what it produced."""
    from seqrec.pipeline.evaluation.report import write_report  # matplotlib loads only when a report is asked for

    try:
        window_cadence = Cadence.parse(window)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--window") from None
    if not window_cadence.every_seconds:
        raise click.BadParameter("the window is a span of log time such as 6h or 1d", param_hint="--window")
    options = EvalOptions(ks=tuple(sorted(ks)), window_ms=int(window_cadence.every_seconds * 1000),
                          history_len=settings.store.history_len, warmup_fraction=warmup,
                          retrain=replace(EvalOptions().retrain, epochs=retrain_epochs),
                          gate=replace(EvalOptions().gate, tolerance=gate_tolerance))
    clicks = _load_log(log, limit)
    if not clicks:
        raise click.UsageError(f"{log} holds no valid clicks")
    runs = []
    if via_kafka:
        kafka = settings.kafka
        runs.append(evaluate_through_kafka(clicks, kafka.bootstrap_servers, kafka.clicks_topic,
                                           kafka.recommendations_topic, options, speed=speed, security=kafka.security))
    else:
        for spec in models:
            name, _, path = spec.rpartition("=")
            checkpoint = Path(path)
            if not checkpoint.is_file():
                raise click.BadParameter(f"checkpoint not found: {checkpoint}", param_hint="--model")
            for cadence in cadences:
                label = f"{name or checkpoint.stem}, retrain {cadence.label}"
                runs.append(evaluate_in_process(clicks, checkpoint, cadence, options, label))
    if as_json:
        click.echo(json.dumps([r.to_dict() for r in runs]))
    else:
        for run in runs:
            metrics = ", ".join(f"{k} {v:.4f}" for k, v in run.report.overall.items() if k != "events")
            click.echo(f"{run.name}: {run.report.scored:,} scored; {metrics}")
    if report_dir:
        path = write_report(runs, report_dir, f"Replay of {log.name}")
        click.echo(f"report: {path}")
