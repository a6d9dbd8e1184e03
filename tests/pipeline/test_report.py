"""The data behind the demo report's plots: windows that fit the run's span, versions at the
time they began to answer, live latency apart from the backlog's catch-up."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from seqrec.pipeline.devtools.demo import LiveStats, run_result
from seqrec.pipeline.evaluation.prequential import fitting_window_ms
from seqrec.pipeline.evaluation.report import drawn_windows, write_report
from seqrec.pipeline.serving.source import ClickEvent

T0 = 1_795_000_000_000  # a wall-clock ms, as the demo restamps clicks at send time


@pytest.mark.parametrize("span_s", [20, 30, 600, 3600, 86_400 * 3])
def test_fitting_window_cuts_the_span_into_several_windows(span_s: int) -> None:
    window = fitting_window_ms(span_s * 1000)
    assert 8 <= span_s * 1000 / window <= 30, window


def simulated_run() -> LiveStats:
    """A 30 s demo: 200 backlog clicks sent at once and answered over 3 s, then 300 live clicks,
    10 per second, each answered 20 ms later; version v2 takes over at 15 s."""
    stats = LiveStats()
    backlog = [ClickEvent(f"b{n}", f"u{n % 20}", f"i{n % 7}", T0) for n in range(200)]
    for click in backlog:
        stats.on_send(click)
    stats.start_live(T0 + 5)
    live = [ClickEvent(f"l{n}", f"u{n % 20}", f"i{(n * 3) % 7}", T0 + 1000 + n * 100) for n in range(300)]
    for n, click in enumerate(backlog):
        stats.on_answer({"event_id": click.event_id, "items": [{"item_id": "i1"}], "model_version": "v1"},
                        T0 + 15 * n)
    for click in live:
        stats.on_send(click)
        version = "v2" if click.timestamp >= T0 + 15_000 else "v1"
        stats.on_answer({"event_id": click.event_id, "items": [{"item_id": "i3"}], "model_version": version},
                        click.timestamp + 20)
    return stats


def test_live_latency_is_apart_from_the_catch_up() -> None:
    stats = simulated_run()
    assert stats.caught_up_ms == T0 + 15 * 199  # the backlog's last answer
    live, catchup = stats.split_latencies()
    assert len(live) + len(catchup) == 500
    assert set(live) == {20}, "a live click answered in 20 ms must not be mixed with the backlog's seconds"
    assert len(catchup) == 200 + 20  # the backlog and the live clicks sent while it was answered


def test_report_data_fits_the_run(tmp_path: Path) -> None:
    stats = simulated_run()
    result = run_result(stats, 30.0)
    starts = [w["start_ms"] for w in result.report.windows]
    assert len(starts) > 1, "one window over the whole run draws a single point"
    assert T0 <= min(starts) and max(starts) <= T0 + 31_000
    assert result.versions == [(T0, "v1"), (T0 + 15_000, "v2")], "versions at the first click each answered"
    write_report([result], tmp_path, "test")
    saved = json.loads((tmp_path / "report.json").read_text())["runs"][0]
    assert set(saved["batch_latency_ms"]) == {20} and len(saved["catchup_latency_ms"]) == 220
    assert all((tmp_path / name).stat().st_size > 0 for name in ("metric_over_time.png", "latency.png",
                                                                  "versions.png"))


def test_a_window_with_almost_no_scored_clicks_is_not_drawn_as_a_collapse() -> None:
    """The demo stops inside its last window: the few clicks scored there are not a fall to 0."""
    stats = simulated_run()
    stats.on_send(ClickEvent("late", "u3", "i5", T0 + 32_000))  # one click after the run's last window
    windows = run_result(stats, 33.0).report.windows
    assert windows[-1]["events"] == 1 and windows[-1]["NDCG@10"] == 0.0
    drawn, left_out = drawn_windows(windows)
    assert left_out == 1 and drawn == windows[:-1]
    assert drawn_windows(windows[:-1]) == (windows[:-1], 0), "full windows are all drawn"


def test_without_matplotlib_the_report_says_which_extra_to_install(tmp_path: Path) -> None:
    """The plots are an optional part: importing the report and the demo needs no matplotlib, and
    writing a report without it is one line naming the extra, with nothing half-written."""
    script = (
        "import sys; sys.modules['matplotlib'] = None\n"  # as if it were not installed
        "import seqrec.pipeline.devtools.demo, seqrec.pipeline.evaluation.report\n"
        "from seqrec.pipeline.errors import SeqrecError\n"
        "try:\n"
        f"    seqrec.pipeline.evaluation.report.write_report([], {str(tmp_path / 'report')!r}, 't')\n"
        "except SeqrecError as exc:\n"
        "    print(exc)\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "the report's plots need matplotlib: pip install 'seqrec[report]'"
    assert not (tmp_path / "report").exists()
