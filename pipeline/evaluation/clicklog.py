"""Click logs: rotated JSON-lines files of click events (the click contract, one per line).

The worker can record what it consumed and produced into them, `seqrec export` turns a dataset
into one, and replay and offline evaluation read them back. Reading never stops at a bad line:
it is reported (file, line, reason) and skipped.
"""

from __future__ import annotations

import json
import logging
import random
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from seqrec.model.data import load_dataset, load_timed_clicks
from seqrec.pipeline.serving.source import ClickEvent, Rejection, SourceLimits, decode_click, encode_click

log = logging.getLogger(__name__)

# Logged traffic may be old (ml-100k is from 1997): only the schema is checked, not the clock.
_LOG_LIMITS = SourceLimits(min_timestamp_ms=0, max_future_skew_ms=10**15)


@dataclass(frozen=True)
class BadLine:
    file: str
    line: int
    reason: str


@dataclass
class ClickLog:
    clicks: list[ClickEvent]
    bad_lines: list[BadLine] = field(default_factory=list)


def log_files(path: str | Path) -> list[Path]:
    """A file, or every `*.jsonl` in a directory in name order (rotation numbers sort)."""
    path = Path(path)
    if path.is_dir():
        files = sorted(path.glob("*.jsonl"))
        if not files:
            raise FileNotFoundError(f"no *.jsonl click log files in {path}")
        return files
    if not path.is_file():
        raise FileNotFoundError(f"click log not found: {path}")
    return [path]


def read_click_log(path: str | Path, sort_by_time: bool = True) -> ClickLog:
    """Every valid click of a log file or directory; bad lines are reported, not fatal."""
    result = ClickLog(clicks=[])
    for file in log_files(path):
        with open(file, "rb") as f:
            for n, raw in enumerate(f, 1):
                raw = raw.rstrip(b"\r\n")
                if not raw.strip():
                    continue
                decoded = decode_click(raw, None, now_ms=0, limits=_LOG_LIMITS, require_key=False)
                if isinstance(decoded, Rejection):
                    result.bad_lines.append(BadLine(str(file), n, f"{decoded.reason}: {decoded.error}"))
                else:
                    result.clicks.append(decoded)
    if sort_by_time:
        result.clicks.sort(key=lambda c: c.timestamp)  # stable: file order among equal stamps
    for bad in result.bad_lines[:5]:
        log.warning("skipped %s:%d (%s)", bad.file, bad.line, bad.reason)
    if len(result.bad_lines) > 5:
        log.warning("... and %d more bad lines", len(result.bad_lines) - 5)
    return result


class RotatingJsonlWriter:
    """Appends JSON lines to `<dir>/<prefix>-000001.jsonl`, starting the next file once one
    passes `max_bytes`. Cheap enough to leave on: buffered writes, one flush per `flush()`."""

    def __init__(self, directory: str | Path, prefix: str, max_bytes: int = 64 * 2**20) -> None:
        if max_bytes < 1:
            raise ValueError(f"max_bytes must be >= 1, got {max_bytes}")
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.prefix = prefix
        self.max_bytes = max_bytes
        existing = sorted(self.directory.glob(f"{prefix}-*.jsonl"))
        self._index = int(existing[-1].stem.rsplit("-", 1)[1]) if existing else 1
        self._file: IO[bytes] | None = None
        self._size = 0

    @property
    def current_path(self) -> Path:
        return self.directory / f"{self.prefix}-{self._index:06d}.jsonl"

    def write_bytes(self, line: bytes) -> None:
        if self._file is None:
            self._file = open(self.current_path, "ab")
            self._size = self._file.tell()
        elif self._size >= self.max_bytes:
            self._file.close()
            self._index += 1
            self._file = open(self.current_path, "ab")
            self._size = 0
        self._file.write(line + b"\n")
        self._size += len(line) + 1

    def write(self, record: dict[str, Any]) -> None:
        self.write_bytes(json.dumps(record, separators=(",", ":")).encode("utf-8"))

    def flush(self) -> None:
        if self._file is not None:
            self._file.flush()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def __enter__(self) -> "RotatingJsonlWriter":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class TrafficRecorder:
    """What a worker consumed and produced, for replay: `<dir>/clicks-*.jsonl` (the click
    contract, replayable with `seqrec replay`) and `<dir>/recommendations-*.jsonl`. One
    worker, one directory (file names do not carry the worker)."""

    def __init__(self, directory: str | Path, max_bytes: int = 64 * 2**20) -> None:
        self.clicks = RotatingJsonlWriter(directory, "clicks", max_bytes)
        self.recommendations = RotatingJsonlWriter(directory, "recommendations", max_bytes)

    def record(self, clicks: Sequence[bytes], recommendations: Sequence[dict[str, Any]]) -> None:
        """`clicks`: the valid clicks' message values as consumed, written as they came (no
        re-encoding); a line break inside one can only be JSON whitespace, so it becomes a space."""
        for raw in clicks:
            self.clicks.write_bytes(raw.replace(b"\n", b" "))
        for rec in recommendations:
            self.recommendations.write(rec)
        # Buffered writes, one flush per batch: a crash loses at most the batch being written.
        self.clicks.flush()
        self.recommendations.flush()

    def close(self) -> None:
        self.clicks.close()
        self.recommendations.close()


def write_click_log(clicks: Iterable[ClickEvent], directory: str | Path, max_bytes: int = 64 * 2**20) -> int:
    n = 0
    with RotatingJsonlWriter(directory, "clicks", max_bytes) as writer:
        for click in clicks:
            writer.write_bytes(encode_click(click))
            n += 1
    return n


# ---- export of datasets ----------------------------------------------------------------------------


def interleave_sequences(
    users: Sequence[str],
    sequences: Sequence[Sequence[str]],
    *,
    start_s: float = 1_700_000_000.0,
    span_s: float = 30 * 86_400.0,
    mean_gap_s: float = 60.0,
    session_len: int = 8,
    session_gap_s: float = 6 * 3600.0,
    seed: int = 0,
) -> list[tuple[str, str, float]]:
    """Timestamps for datasets without a clock: each user starts at a random time in `span_s`
    and clicks in sessions (exponential gaps inside, hours between), in the dataset's order."""
    rng = random.Random(seed)
    rows: list[tuple[str, str, float]] = []
    for user, items in zip(users, sequences):
        t = start_s + rng.random() * span_s
        for n, item in enumerate(items):
            if n:
                t += rng.expovariate(1 / session_gap_s) if n % session_len == 0 else rng.expovariate(1 / mean_gap_s)
            rows.append((user, item, t))
    rows.sort(key=lambda r: r[2])
    return rows


def clicks_from_rows(rows: Iterable[tuple[str, str, float]]) -> Iterator[ClickEvent]:
    """(user, item, seconds) rows -> click events with stable ids (`<user>-<n-th click>`)."""
    counts: dict[str, int] = {}
    for user, item, ts in rows:
        n = counts.get(user, 0)
        counts[user] = n + 1
        yield ClickEvent(event_id=f"{user}-{n}", user_id=user, item_id=item, timestamp=int(ts * 1000))


def export_dataset(path: str | Path, out_dir: str | Path, fmt: str | None = None, seed: int = 0) -> tuple[int, bool]:
    """Write a dataset as a click log; returns (clicks written, whether real timestamps were kept)."""
    rows = load_timed_clicks(path, fmt)
    real_clock = rows is not None
    if rows is None:
        dataset = load_dataset(path, fmt)
        rows = interleave_sequences(dataset.users, dataset.sequences, seed=seed)
    return write_click_log(clicks_from_rows(rows), out_dir), real_clock
