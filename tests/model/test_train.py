"""Short training runs on synthetic clicks: it learns (beats most-popular), resumes, respects caps."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from seqrec.model.checkpoint import load_checkpoint
from seqrec.model.data import ItemMap, leave_one_out, synthetic_dataset
from seqrec.model.evaluate import PopularityScorer, evaluate_split
from seqrec.model.train import TrainConfig, train, training_tensors

SMALL = dict(max_len=20, d_model=32, n_heads=2, n_blocks=1, dropout=0.1)


@pytest.fixture(autouse=True)
def one_thread():
    # Tiny tensors: one thread is faster, and on a busy shared machine extra threads only spin.
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def dataset():
    return synthetic_dataset(200, 60, n_clusters=6, seed=1)


def fast(**kw) -> TrainConfig:
    base = dict(epochs=6, batch_size=32, lr=5e-3, patience=3, progress=False, device="cpu", seed=0)
    return TrainConfig(**{**base, **kw})


def test_training_tensors_shift_targets_by_one() -> None:
    from seqrec.model.data import Split

    split = Split(train=[[1, 2, 3, 4], [5]], valid_target=[0, 0], test_target=[0, 0], n_items=5)
    x, y = training_tensors(split, 3)
    assert x.tolist() == [[1, 2, 3]] and y.tolist() == [[2, 3, 4]]


def test_short_training_beats_popularity(dataset, tmp_path: Path) -> None:
    result = train(dataset, None, fast(exclude_seen=False), tmp_path, **SMALL)
    split = leave_one_out(dataset, ItemMap.from_items(dataset.item_ids()))
    pop = evaluate_split(PopularityScorer(split), split, "test", ks=(10,), exclude_seen=False)
    assert result.test["NDCG@10"] > 1.5 * pop["NDCG@10"], (result.test, pop)
    assert result.test["exclude_seen"] == 0.0 and result.test_other_exclusion["exclude_seen"] == 1.0
    assert "CC@10" in result.test  # synthetic items carry their cluster as category
    ckpt = load_checkpoint(result.best_path)
    assert ckpt.metrics["test"]["NDCG@10"] == pytest.approx(result.test["NDCG@10"])
    assert ckpt.metrics["best_epoch"] == result.best_epoch
    assert ckpt.data_fingerprint == dataset.fingerprint()
    history = [json.loads(line) for line in (tmp_path / "history.jsonl").read_text().splitlines()]
    assert len(history) == result.epochs_run and "valid_NDCG@10" in history[0]


def test_resume_continues_where_it_stopped(dataset, tmp_path: Path) -> None:
    full = train(dataset, None, fast(epochs=2, patience=99), tmp_path / "full", **SMALL)
    train(dataset, None, fast(epochs=1, patience=99), tmp_path / "part", **SMALL)
    resumed = train(dataset, None, fast(epochs=2, patience=99), tmp_path / "part",
                    resume=tmp_path / "part" / "last.pt")
    assert resumed.epochs_run == 2
    assert [h["epoch"] for h in resumed.history] == [1, 2]
    assert resumed.history[-1]["loss"] == pytest.approx(full.history[-1]["loss"], rel=1e-4)


def test_max_minutes_stops_early_and_keeps_best(dataset, tmp_path: Path) -> None:
    result = train(dataset, None, fast(epochs=50, max_minutes=1e-4), tmp_path, **SMALL)
    assert result.stopped == "time" and result.epochs_run == 1 and result.best_path.exists()


def test_sampled_softmax_trains(dataset, tmp_path: Path) -> None:
    result = train(dataset, None, fast(epochs=2, n_negatives=16), tmp_path, **SMALL)
    assert result.epochs_run == 2 and result.history[-1]["loss"] < result.history[0]["loss"]


def test_lr_is_lowered_after_plateau_patience_validations_without_a_new_best(
        dataset, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A validation score that never improves after the first epoch (pure schedule logic; the
    # model still trains for real).
    monkeypatch.setattr("seqrec.model.train._validate", lambda *a, **k: {"NDCG@10": 0.5})
    result = train(dataset, None, fast(epochs=5, patience=99, lr=1e-2, lr_plateau_patience=2,
                                       lr_plateau_factor=0.5), tmp_path, **SMALL)
    assert [h["lr"] for h in result.history] == pytest.approx([1e-2, 1e-2, 1e-2, 5e-3, 5e-3])


def test_resume_with_another_lr_uses_it(dataset, tmp_path: Path) -> None:
    train(dataset, None, fast(epochs=1, patience=99, lr=1e-2), tmp_path, **SMALL)
    resumed = train(dataset, None, fast(epochs=2, patience=99, lr=1e-3), tmp_path, resume=tmp_path / "last.pt")
    assert [h["lr"] for h in resumed.history] == pytest.approx([1e-2, 1e-3])
