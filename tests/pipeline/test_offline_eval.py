"""Offline evaluation end to end: a really trained model, a click log, retraining cadences, the report."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from seqrec.model.config import ModelConfig
from seqrec.model.data import synthetic_clicks
from seqrec.model.train import TrainConfig
from seqrec.pipeline.evaluation.clicklog import clicks_from_rows, write_click_log
from seqrec.pipeline.lifecycle.model_store import ModelStore
from seqrec.pipeline.evaluation.offline_eval import Cadence
from seqrec.pipeline.lifecycle.retrain import retrain_once


@pytest.fixture(scope="module")
def log_and_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, int]:
    root = tmp_path_factory.mktemp("offline")
    clicks = list(clicks_from_rows(synthetic_clicks(200, 80, n_clusters=5, seed=7)))
    write_click_log(clicks, root / "log")
    store = ModelStore(root / "store")
    retrain_once(clicks[: len(clicks) // 2], store,
                 train_config=TrainConfig(epochs=6, patience=2, batch_size=64, progress=False),
                 model_config=ModelConfig(n_items=1, max_len=20, d_model=32, n_heads=2, n_blocks=1))
    return root / "log", store.checkpoint_path(store.latest()), len(clicks)


def test_evaluate_replay_compares_cadences_and_writes_a_report(log_and_checkpoint, tmp_path: Path) -> None:
    log, checkpoint, n_clicks = log_and_checkpoint
    report_dir = tmp_path / "report"
    result = subprocess.run(
        [sys.executable, "-m", "seqrec.pipeline.cli", "evaluate-replay", str(log), "--model", f"soft={checkpoint}",
         "--retrain-every", "never", "--retrain-every", str(n_clicks * 3 // 4), "--retrain-epochs", "1",
         "--gate-tolerance", "1",  # every retrain publishes: the cadence must show in the versions
         "--warmup", "0.5", "--report", str(report_dir), "--json"],
        capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stderr
    runs = json.loads(result.stdout.splitlines()[0])
    assert [r["name"] for r in runs] == ["soft, retrain never", f"soft, retrain every {n_clicks * 3 // 4} clicks"]
    for run in runs:
        # Every click after the warm-up half is scored, except users' very first clicks.
        assert run["scored"] + run["first_clicks"] == n_clicks - n_clicks // 2
        assert run["unanswered"] == 0
        assert 0.0 < run["overall"]["HR@10"] <= 1.0
    assert len(runs[0]["versions"]) == 1
    retrained = runs[1]["versions"]
    assert len(retrained) == 2, "one retrain at 3/4 of the log, published"
    assert retrained[0][1] == runs[0]["versions"][0][1] and retrained[1][1] != retrained[0][1]
    for name in ("report.md", "report.json", "metric_over_time.png", "latency.png", "versions.png", "coverage.png"):
        assert (report_dir / name).stat().st_size > 0, name
    assert "soft, retrain never" in (report_dir / "report.md").read_text()


@pytest.mark.parametrize("text,clicks,seconds", [("never", None, None), ("5000", 5000, None), ("6h", None, 21600.0),
                                                 ("1d", None, 86400.0)])
def test_cadence_parsing(text: str, clicks: int | None, seconds: float | None) -> None:
    cadence = Cadence.parse(text)
    assert (cadence.every_clicks, cadence.every_seconds) == (clicks, seconds)


@pytest.mark.parametrize("text", ["", "often", "0", "-3h", "h"])
def test_cadence_rejects_nonsense(text: str) -> None:
    with pytest.raises(ValueError, match="cadence"):
        Cadence.parse(text)


def test_log_time_cadence_boundaries() -> None:
    from seqrec.pipeline.serving.source import ClickEvent

    clicks = [ClickEvent(f"e{i}", "u", "i", i * 3_600_000) for i in range(10)]  # hourly clicks
    assert Cadence.parse("3h").boundaries(clicks) == [3, 6, 9]
    assert Cadence.parse("4").boundaries(clicks) == [4, 8]
