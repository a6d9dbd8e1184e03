"""Checkpoint round-trip and the errors for broken or incompatible files."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest
import torch

from seqrec.model.checkpoint import load_checkpoint, read_payload, save_checkpoint
from seqrec.model.config import ModelConfig
from seqrec.model.data import ItemMap
from seqrec.model.errors import CheckpointError
from seqrec.model.sasrec import SASRec

ITEMS = ItemMap([f"i{n}" for n in range(12)])


def saved(tmp_path: Path, **overrides) -> tuple[Path, SASRec]:
    torch.manual_seed(0)
    model = SASRec(ModelConfig(n_items=12, max_len=6, d_model=8, n_heads=2)).eval()
    path = tmp_path / "m.pt"
    save_checkpoint(path, model, ITEMS, data_fingerprint="abc", metrics={"valid": {"NDCG@10": 0.5}},
                    item_popularity=list(range(13)), **overrides)
    return path, model


def test_round_trip_gives_identical_scores(tmp_path: Path) -> None:
    path, model = saved(tmp_path, extra={"note": "x"})
    ckpt = load_checkpoint(path)
    items = torch.tensor([[0, 1, 2, 3], [4, 5, 6, 7]])
    with torch.no_grad():
        assert torch.equal(ckpt.model.score_last(items), model.score_last(items))
    assert ckpt.config == model.config and ckpt.item_map == ITEMS
    assert ckpt.metrics == {"valid": {"NDCG@10": 0.5}} and ckpt.data_fingerprint == "abc"
    assert ckpt.item_popularity == list(range(13)) and ckpt.extra == {"note": "x"}
    assert ckpt.version and ckpt.version.split("-")[-1].isalnum()
    assert not list(tmp_path.glob(".*tmp"))  # the temp file was renamed away


def test_corrupt_and_missing_files(tmp_path: Path) -> None:
    path, _ = saved(tmp_path)
    data = path.read_bytes()
    for garbage in (data[: len(data) // 2], b"not a checkpoint"):
        path.write_bytes(garbage)
        with pytest.raises(CheckpointError) as caught:
            load_checkpoint(path)
        # torch's advice to load with weights_only=False is wrong for garbage and unsafe.
        assert str(caught.value) == f"not a seqrec checkpoint: {path}"
    with pytest.raises(CheckpointError, match="not found"):
        load_checkpoint(tmp_path / "nope.pt")


def test_pickled_object_is_refused_by_name(tmp_path: Path) -> None:
    path, _ = saved(tmp_path)
    payload = read_payload(path)
    payload["extra"] = argparse.Namespace(lr=0.001)  # what a script saving its `args` leaves behind
    torch.save(payload, path)
    with pytest.raises(CheckpointError, match=r"holds a pickled argparse\.Namespace object, which is refused") as caught:
        load_checkpoint(path)
    assert "weights_only" not in str(caught.value)


def _rewrite(path: Path, change) -> None:
    payload = read_payload(path)
    change(payload)
    torch.save(payload, path)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda p: p["config"].update(attention="nope"), "unknown attention kind 'nope'"),
        (lambda p: p["config"].update(d_model=16), "weights do not fit"),
        (lambda p: p.pop("item_ids"), "no 'item_ids'"),
        (lambda p: p.update(item_ids=p["item_ids"][:-1]), "mapping holds 11 ids"),
        (lambda p: p.update(format="other"), "not a seqrec checkpoint"),
        (lambda p: p["config"].update(colour="red"), "bad model config"),
    ],
)
def test_incompatible_checkpoints_name_the_problem(tmp_path: Path, change, message: str) -> None:
    path, _ = saved(tmp_path)
    _rewrite(path, change)
    with pytest.raises(CheckpointError, match=message):
        load_checkpoint(path)


def test_save_rejects_non_plain_extra_and_wrong_map(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="plain types"):
        saved(tmp_path, extra={"obj": object()})
    model = SASRec(ModelConfig(n_items=3, max_len=4, d_model=8))
    with pytest.raises(ValueError, match="n_items"):
        save_checkpoint(tmp_path / "x.pt", model, ITEMS, data_fingerprint="", metrics={})
