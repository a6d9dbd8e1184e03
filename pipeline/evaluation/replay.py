"""Replay a click log into Kafka, keeping its inter-arrival times divided by a speed factor (or
as fast as possible). Works against any broker, so it doubles as a load test of a deployment."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from kafka import KafkaProducer
from tqdm.auto import tqdm

from seqrec.pipeline.kafka_security import open_client
from seqrec.pipeline.settings import KafkaSecuritySettings
from seqrec.pipeline.serving.source import ClickEvent, encode_click

log = logging.getLogger(__name__)


def parse_speed(text: str) -> float | None:
    """'10x' or '10' -> 10.0; 'max' -> None (no waiting). Raises ValueError with the reason."""
    value = text.strip().lower()
    if value == "max":
        return None
    try:
        speed = float(value.removesuffix("x"))
    except ValueError:
        raise ValueError(f"speed must look like 10x, 0.5x or max, got {text!r}") from None
    if not speed > 0:
        raise ValueError(f"speed must be positive, got {text!r}")
    return speed


@dataclass
class ReplaySummary:
    sent: int
    seconds: float
    max_lag_s: float  # worst delay of a send behind its schedule
    mean_lag_s: float

    @property
    def rate(self) -> float:
        return self.sent / self.seconds if self.seconds > 0 else float("inf")

    def line(self) -> str:
        return (f"sent {self.sent:,} clicks in {self.seconds:.1f} s ({self.rate:,.0f}/s); "
                f"behind schedule: mean {self.mean_lag_s * 1000:.1f} ms, max {self.max_lag_s * 1000:.1f} ms")


def replay_clicks(
    clicks: Sequence[ClickEvent],
    send: Callable[[ClickEvent], None],
    speed: float | None,
    *,
    restamp: bool = True,
    progress: bool = True,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    wall_ms: Callable[[], int] = lambda: int(time.time() * 1000),
) -> ReplaySummary:
    """Send clicks (sorted by log time) on schedule: click i leaves at start + (t_i - t_0) / speed.

    With `restamp`, each click carries its send time as `timestamp`, so a worker sees live
    traffic (its clock checks would reject year-old log times)."""
    if not clicks:
        return ReplaySummary(0, 0.0, 0.0, 0.0)
    t0_log = clicks[0].timestamp
    start = clock()
    lag_sum = lag_max = 0.0
    for click in tqdm(clicks, desc="replay", unit="click", disable=not progress, mininterval=1.0):
        if speed is not None:
            due = start + (click.timestamp - t0_log) / 1000.0 / speed
            wait = due - clock()
            if wait > 0:
                sleep(wait)
            else:
                lag_sum -= wait
                lag_max = max(lag_max, -wait)
        send(replace(click, timestamp=wall_ms()) if restamp else click)
    seconds = clock() - start
    return ReplaySummary(len(clicks), seconds, lag_max, lag_sum / len(clicks))


def replay_to_kafka(
    clicks: Sequence[ClickEvent], bootstrap: str, topic: str, speed: float | None, *, progress: bool = True,
    restamp: bool = True, on_send: Callable[[ClickEvent], None] | None = None,
    security: KafkaSecuritySettings | None = None,
) -> ReplaySummary:
    """Replay into `topic`, keyed by user id (the worker's partitioning contract). `on_send` sees
    each click as sent (after restamping); it may raise to stop the replay early."""
    producer = open_client(KafkaProducer, bootstrap, security, linger_ms=2, acks=1, enable_idempotence=False)
    try:
        def send(click: ClickEvent) -> None:
            producer.send(topic, key=click.user_id.encode("utf-8"), value=encode_click(click))
            if on_send is not None:
                on_send(click)

        summary = replay_clicks(clicks, send, speed, progress=progress, restamp=restamp)
        producer.flush()
    finally:
        producer.close()
    log.info("replay to %s/%s: %s", bootstrap, topic, summary.line())
    return summary
