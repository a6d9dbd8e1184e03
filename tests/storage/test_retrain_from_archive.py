"""`seqrec retrain --archive URL --window` trains on the window's clicks only, read from a real S3
server, and publishes through the gate as before."""

from __future__ import annotations

import re
from collections import defaultdict
from datetime import datetime, timezone
from pathlib import Path

import fsspec
import pytest

from seqrec.model.checkpoint import load_checkpoint
from seqrec.model.data import synthetic_clicks
from seqrec.pipeline.cli import main
from seqrec.pipeline.serving.source import ClickEvent
from seqrec.pipeline.storage.archive import parquet_bytes
from seqrec.pipeline.storage.location import put_object
from seqrec.pipeline.storage.archive_layout import data_file, event_date

UNTIL = datetime(2026, 12, 1, tzinfo=timezone.utc)
UNTIL_MS = int(UNTIL.timestamp() * 1000)
DAY_MS = 86_400_000


def write_archive(url: str, clicks: list[ClickEvent]) -> None:
    """Clicks into the archive's layout with the archiver's own writer (one file per date)."""
    fs, root = fsspec.core.url_to_fs(url)
    by_date: dict[str, list] = defaultdict(list)
    for offset, click in enumerate(clicks):
        by_date[event_date(click.timestamp)].append((click, 0, offset))
    for date, rows in by_date.items():
        put_object(fs, data_file(root, date, 0, rows[0][2], rows[-1][2]), parquet_bytes(rows))


def test_retrain_reads_only_its_window_of_the_archive(s3_bucket: str, tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    recent = synthetic_clicks(150, 60, n_clusters=4, seed=5)
    span = max(t for _, _, t in recent) - min(t for _, _, t in recent)
    # The window's clicks spread over the last day and a half; older ones, of other items, 10 days back.
    in_window = [ClickEvent(f"n{i}", user, item, UNTIL_MS - int(1.5 * DAY_MS) + int((t - recent[0][2]) / span * DAY_MS))
                 for i, (user, item, t) in enumerate(sorted(recent, key=lambda c: c[2]))]
    old = [ClickEvent(f"o{i}", c.user_id, f"old-{c.item_id}", c.timestamp - 10 * DAY_MS) for i, c in enumerate(in_window)]
    url = f"{s3_bucket}/archive"
    write_archive(url, old + in_window)

    store = tmp_path / "store"
    code = main(["retrain", "--archive", url, "--window", "2d", "--until", UNTIL.isoformat(), "--store", str(store),
                 "--epochs", "15"])
    out = capsys.readouterr().out
    assert code == 0, out
    trained, held_out = (int(n.replace(",", "")) for n in re.search(r"([\d,]+) clicks trained, ([\d,]+) held out", out).groups())
    assert trained + held_out == len(in_window)
    assert "published" in out
    published = load_checkpoint(next((store / "versions").glob("*.pt")))
    assert not any(item.startswith("old-") for item in published.item_map.to_list())

    # The whole archive when no window is given.
    assert main(["retrain", "--archive", url, "--store", str(tmp_path / "other"), "--epochs", "1", "--dry-run"]) == 0
    trained, held_out = (int(n.replace(",", "")) for n in
                         re.search(r"([\d,]+) clicks trained, ([\d,]+) held out", capsys.readouterr().out).groups())
    assert trained + held_out == len(in_window) + len(old)
