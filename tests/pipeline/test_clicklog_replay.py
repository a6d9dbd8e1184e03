"""Click logs (write, rotate, read with bad lines), dataset export, and replay pacing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from seqrec.pipeline.evaluation.clicklog import TrafficRecorder, export_dataset, read_click_log, write_click_log
from seqrec.pipeline.evaluation.replay import parse_speed, replay_clicks
from seqrec.pipeline.serving.source import ClickEvent


def clicks(n: int, gap_ms: int = 1000) -> list[ClickEvent]:
    return [ClickEvent(f"e{i}", f"u{i % 3}", f"i{i % 7}", 1_700_000_000_000 + i * gap_ms) for i in range(n)]


def test_log_round_trip_with_rotation(tmp_path: Path) -> None:
    written = clicks(500)
    assert write_click_log(written, tmp_path / "log", max_bytes=4096) == 500
    files = sorted((tmp_path / "log").glob("clicks-*.jsonl"))
    assert len(files) > 3, "the log should have rotated"
    assert read_click_log(tmp_path / "log").clicks == written


def test_bad_lines_are_reported_and_skipped(tmp_path: Path) -> None:
    good = clicks(3)
    path = tmp_path / "log.jsonl"
    lines = [
        json.dumps({"event_id": c.event_id, "user_id": c.user_id, "item_id": c.item_id, "timestamp": c.timestamp})
        for c in good
    ]
    lines.insert(1, "{not json")
    lines.insert(3, json.dumps({"event_id": "x", "user_id": "u"}))
    path.write_bytes(("\n".join(lines) + "\n").encode() + b"\xff\xfe\n")
    log = read_click_log(path)
    assert log.clicks == good
    assert [b.line for b in log.bad_lines] == [2, 4, 6]
    assert log.bad_lines[0].reason.startswith("invalid_json")
    assert log.bad_lines[1].reason.startswith("missing_field")
    assert log.bad_lines[2].reason.startswith("undecodable")


@pytest.mark.parametrize("text,expected", [("10x", 10.0), ("0.5", 0.5), ("max", None), ("MAX", None)])
def test_parse_speed(text: str, expected: float | None) -> None:
    assert parse_speed(text) == expected


@pytest.mark.parametrize("text", ["fast", "0x", "-2x", ""])
def test_parse_speed_rejects_nonsense(text: str) -> None:
    with pytest.raises(ValueError, match="speed"):
        parse_speed(text)


def test_replay_keeps_inter_arrival_times_divided_by_speed() -> None:
    sent: list[tuple[float, ClickEvent]] = []
    now = [0.0]

    def sleep(seconds: float) -> None:
        now[0] += seconds

    log = clicks(11, gap_ms=2000)  # 20 s of log time
    summary = replay_clicks(log, lambda c: sent.append((now[0], c)), speed=10.0, progress=False,
                            clock=lambda: now[0], sleep=sleep, wall_ms=lambda: 42)
    assert summary.sent == 11
    assert [t for t, _ in sent] == pytest.approx([i * 0.2 for i in range(11)])
    assert summary.seconds == pytest.approx(2.0)
    assert all(c.timestamp == 42 for _, c in sent), "replayed clicks carry their send time"


def test_replay_at_real_speed_within_tolerance() -> None:
    import time

    sent: list[float] = []
    log = clicks(6, gap_ms=100)  # 0.5 s of log time
    start = time.monotonic()
    summary = replay_clicks(log, lambda c: sent.append(time.monotonic() - start), speed=2.0, progress=False)
    assert summary.seconds == pytest.approx(0.25, abs=0.1)
    for i, t in enumerate(sent):
        assert t == pytest.approx(i * 0.05, abs=0.05)


def test_export_keeps_ml100k_clock(tmp_path: Path, shared_data: Path) -> None:
    path = shared_data / "ml-100k" / "ml-100k.inter"
    n, real_clock = export_dataset(path, tmp_path / "log")
    assert (n, real_clock) == (100_000, True)
    log = read_click_log(tmp_path / "log")
    assert len(log.clicks) == 100_000 and not log.bad_lines
    assert log.clicks[0].timestamp == 874_724_710_000  # the earliest rating in the file


def test_export_synthesises_a_clock_that_keeps_user_order(tmp_path: Path) -> None:
    src = tmp_path / "tiny.txt"
    src.write_text("1 5 6 7\n2 7 8\n3 9 5 6 8\n")
    n, real_clock = export_dataset(src, tmp_path / "log", fmt="s3rec")
    assert (n, real_clock) == (9, False)
    log = read_click_log(tmp_path / "log").clicks
    per_user = {u: [c.item_id for c in log if c.user_id == u] for u in "123"}
    assert per_user == {"1": ["5", "6", "7"], "2": ["7", "8"], "3": ["9", "5", "6", "8"]}
    assert [c.timestamp for c in log] == sorted(c.timestamp for c in log)


def test_recorder_keeps_the_consumed_bytes_on_one_line(tmp_path: Path) -> None:
    consumed = [
        b'{"timestamp":1700000000000,"item_id":"i1","user_id":"u1","event_id":"e1"}',
        json.dumps({"event_id": "e2", "user_id": "u2", "item_id": "i2", "timestamp": 1_700_000_001_000},
                   indent=2).encode(),  # a producer's pretty-printed JSON: line breaks between tokens
    ]
    recorder = TrafficRecorder(tmp_path)
    recorder.record(consumed, [{"event_id": "e1", "items": []}])
    recorder.close()
    recorded = tmp_path / "clicks-000001.jsonl"
    assert recorded.read_bytes().splitlines() == [consumed[0], consumed[1].replace(b"\n", b" ")]
    assert read_click_log(recorded, sort_by_time=False).clicks == [
        ClickEvent("e1", "u1", "i1", 1_700_000_000_000), ClickEvent("e2", "u2", "i2", 1_700_000_001_000)]
