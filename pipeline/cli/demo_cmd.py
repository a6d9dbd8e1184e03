"""`seqrec demo`: the main job, on a fresh machine with nothing prepared."""

from __future__ import annotations

import math
from pathlib import Path

import click

from seqrec.model.attention import attention_kinds
from seqrec.pipeline.cli.replay_cmd import _speed


def _demo_speed(ctx: click.Context, param: click.Parameter, value: str | None) -> float | None:
    if value is None:
        return None
    speed = _speed(ctx, param, value)
    return math.inf if speed is None else speed


@click.command()
@click.option("--duration", type=click.FloatRange(min=5), default=None,
              help="Seconds to run; default until Ctrl-C or the end of the log.")
@click.option("--data", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="A dataset to replay instead of synthetic clicks (any supported format).")
@click.option("--users", type=click.IntRange(min=10), default=1000, show_default=True, help="Synthetic users.")
@click.option("--items", type=click.IntRange(min=20), default=300, show_default=True, help="Synthetic items.")
@click.option("--speed", default=None, callback=_demo_speed,
              help="Replay speed of the live half of the log (10x, max); default: fit it into --duration (or 5 min).")
@click.option("--attention", type=click.Choice(attention_kinds()), default="softmax", show_default=True)
@click.option("--retrain-interval", type=click.FloatRange(min=5), default=60, show_default=True,
              help="Seconds between retraining runs.")
@click.option("--workdir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Where models, logs and the report go (default: a new temporary folder).")
def demo(duration: float | None, data: Path | None, users: int, items: int, speed: float | None, attention: str,
         retrain_interval: float, workdir: Path | None) -> None:
    """Run the whole system locally and watch it: broker, first model, worker, retraining, replay.

    Trains a first model on the older half of the clicks, serves the newer half through Kafka and
    a worker, retrains in the background (the worker hot-swaps each published version) and shows
    throughput, end-to-end latency, hit rate, model version and dead letters live. Ends with a
    summary and a replay report; stops everything it started, also on Ctrl-C."""
    from seqrec.pipeline.devtools.demo import DemoOptions, run_demo

    run_demo(DemoOptions(duration_s=duration, data=data, users=users, items=items, speed=speed,
                         attention=attention, retrain_interval_s=retrain_interval, workdir=workdir))
