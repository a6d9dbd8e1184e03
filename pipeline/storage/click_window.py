"""Reading a window of event time from the click archive (archive_layout.py), for retraining.

Only the date directories that overlap the window are listed and read, and only the columns a
retrain needs, one record batch at a time: the memory a read takes grows with the window, not
with the archive. A click archived twice (a producer that sent it twice) is kept once, by event id.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
from tqdm.auto import tqdm

from seqrec.pipeline.serving.source import ClickEvent
from seqrec.pipeline.storage.archive_layout import event_date
from seqrec.pipeline.storage.location import StorageError, redact, resolve
from seqrec.pipeline.timespan import parse_span

log = logging.getLogger(__name__)

_COLUMNS = ["event_id", "user_id", "item_id", "timestamp", "session_id"]
_DATE_PARTITIONING = ds.partitioning(pa.schema([("date", pa.string())]), flavor="hive")


def _parse_instant(text: str, option: str) -> int:
    """ms since the epoch of an ISO date or date-time (UTC unless it names a zone)."""
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(f"{option} takes a date or date-time such as 2026-09-01 or 2026-09-01T12:00, "
                         f"got {text!r}") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return int(moment.timestamp() * 1000)


@dataclass(frozen=True)
class TimeWindow:
    """Event times in [since_ms, until_ms); None is open on that side."""

    since_ms: int | None = None
    until_ms: int | None = None

    @classmethod
    def from_options(cls, *, window: str | None, since: str | None, until: str | None, now_ms: int) -> "TimeWindow":
        """`--window 90d` reaches back from `--until` (default: now); `--since` gives the start
        instead. Neither: the whole archive up to `--until`."""
        if window and since:
            raise ValueError("give --window or --since, not both")
        until_ms = _parse_instant(until, "--until") if until else None
        since_ms = _parse_instant(since, "--since") if since else None
        if window:
            since_ms = (until_ms if until_ms is not None else now_ms) - int(parse_span(window) * 1000)
        if since_ms is not None and until_ms is not None and since_ms >= until_ms:
            raise ValueError("the window is empty: its start is not before its end")
        return cls(since_ms, until_ms)

    def holds_date(self, day: str) -> bool:
        """Whether any instant of the UTC date `day` (YYYY-MM-DD) falls in the window."""
        if self.since_ms is not None and day < event_date(self.since_ms):
            return False
        return self.until_ms is None or day <= event_date(self.until_ms - 1)

    def expression(self) -> ds.Expression | None:
        bounds = []
        if self.since_ms is not None:
            bounds.append(ds.field("timestamp") >= self.since_ms)
        if self.until_ms is not None:
            bounds.append(ds.field("timestamp") < self.until_ms)
        if not bounds:
            return None
        return bounds[0] if len(bounds) == 1 else bounds[0] & bounds[1]

    def label(self) -> str:
        def show(ms: int | None, open_side: str) -> str:
            return open_side if ms is None else datetime.fromtimestamp(ms / 1000, tz=timezone.utc).isoformat(timespec="seconds")
        return f"[{show(self.since_ms, 'the start')}, {show(self.until_ms, 'now')})"


def window_files(url: str, window: TimeWindow) -> tuple[object, str, list[str]]:
    """(filesystem, root, the data files of the date directories that overlap `window`)."""
    fs, root = resolve(url)
    fs.invalidate_cache()  # object-store listings are cached per process: a retrain loop must see new files
    try:
        entries = fs.ls(root, detail=False)
    except FileNotFoundError:
        raise StorageError(f"no click archive at {redact(url)}") from None
    days = sorted(name.rsplit("date=", 1)[1] for name in entries if "/date=" in f"/{name.rsplit('/', 1)[-1]}")
    files: list[str] = []
    for day in (d for d in days if window.holds_date(d)):
        files.extend(sorted(f for f in fs.find(f"{root}/date={day}") if f.endswith(".parquet")))
    return fs, root, files


def archived_counts(url: str) -> tuple[int, int, int]:
    """(data files, clicks, dates) the archive holds, from the Parquet footers alone; zeros when
    there is no archive yet."""
    try:
        fs, _, files = window_files(url, TimeWindow())
    except StorageError:
        return 0, 0, 0
    clicks = sum(pq.ParquetFile(f, filesystem=fs).metadata.num_rows for f in files)
    return len(files), clicks, len({f.rsplit("date=", 1)[1].split("/", 1)[0] for f in files})


def iter_window(url: str, window: TimeWindow, *, progress: bool = False) -> Iterator[ClickEvent]:
    """The window's clicks, each event id once, in archive order (by date, then file)."""
    fs, root, files = window_files(url, window)
    if not files:
        return
    dataset = ds.dataset(files, filesystem=fs, format="parquet", partitioning=_DATE_PARTITIONING,
                         partition_base_dir=root)
    seen: set[str] = set()
    shared: dict[str, str] = {}  # one string object per user and per item, not one per click
    scanner = dataset.scanner(columns=_COLUMNS, filter=window.expression(), batch_size=65_536)
    with tqdm(desc="reading the archive", unit=" clicks", disable=not progress, unit_scale=True) as bar:
        for batch in scanner.to_batches():
            columns = batch.to_pydict()
            for event_id, user_id, item_id, timestamp, session_id in zip(*(columns[c] for c in _COLUMNS)):
                if event_id in seen:
                    continue
                seen.add(event_id)
                yield ClickEvent(event_id, shared.setdefault(user_id, user_id), shared.setdefault(item_id, item_id),
                                 timestamp, session_id)
            bar.update(batch.num_rows)


def read_window(url: str, window: TimeWindow, *, progress: bool = False) -> list[ClickEvent]:
    """The window's clicks as a list; an empty window is an error naming the archive and the window."""
    clicks = list(iter_window(url, window, progress=progress))
    if not clicks:
        raise StorageError(f"no clicks in the archive {redact(url)} for {window.label()}")
    log.info("read %d clicks from %s for %s", len(clicks), redact(url), window.label())
    return clicks


__all__ = ["TimeWindow", "archived_counts", "iter_window", "read_window", "window_files"]
