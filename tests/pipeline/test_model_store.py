"""The directory model store: versions, promotion, rollback, retention, refusal of bad files."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from model.checkpoint import save_checkpoint
from model.config import ModelConfig
from model.data import ItemMap
from model.errors import CheckpointError
from model.sasrec import SASRec
from pipeline.cli import main
from pipeline.model_store import DirectoryModelStore


def make_checkpoint(path: Path, seed: int, n_items: int = 12) -> Path:
    torch.manual_seed(seed)
    model = SASRec(ModelConfig(n_items=n_items, max_len=8, d_model=8, n_heads=2, n_blocks=1))
    save_checkpoint(path, model, ItemMap.from_items(str(i) for i in range(1, n_items + 1)),
                    data_fingerprint=f"seed{seed}", metrics={"valid": {"ndcg@10": 0.1 * seed}})
    return path


def test_publish_promote_and_rollback(tmp_path: Path) -> None:
    store = DirectoryModelStore(tmp_path / "store")
    assert store.latest() is None
    v1 = store.publish(make_checkpoint(tmp_path / "a.pt", 1))
    v2 = store.publish(make_checkpoint(tmp_path / "b.pt", 2))
    assert v1 != v2
    assert store.latest() == v2
    assert [v.version for v in store.versions()] == [v1, v2]
    assert store.rollback() == v1
    assert store.latest() == v1
    with pytest.raises(CheckpointError, match="nothing to roll back"):
        store.rollback()
    store.promote(v2)
    assert store.latest() == v2


def test_publish_without_promotion_keeps_serving_version(tmp_path: Path) -> None:
    store = DirectoryModelStore(tmp_path / "store")
    v1 = store.publish(make_checkpoint(tmp_path / "a.pt", 1))
    v2 = store.publish(make_checkpoint(tmp_path / "b.pt", 2), promote=False)
    assert store.latest() == v1
    assert store.info(v2).metrics["valid"]["ndcg@10"] == pytest.approx(0.2)


def test_corrupt_checkpoint_is_refused_and_serving_unchanged(tmp_path: Path) -> None:
    store = DirectoryModelStore(tmp_path / "store")
    v1 = store.publish(make_checkpoint(tmp_path / "a.pt", 1))
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"definitely not a checkpoint")
    with pytest.raises(CheckpointError):
        store.publish(bad)
    assert store.latest() == v1
    assert len(store.versions()) == 1


def test_retention_keeps_last_n_and_rollback_targets(tmp_path: Path) -> None:
    store = DirectoryModelStore(tmp_path / "store", keep=2)
    versions = [store.publish(make_checkpoint(tmp_path / f"{i}.pt", i)) for i in range(1, 5)]
    kept = [v.version for v in store.versions()]
    assert kept == versions[-2:]
    assert store.rollback() == versions[-2]


def test_models_cli_lists_and_rolls_back(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    store_dir = tmp_path / "store"
    store = DirectoryModelStore(store_dir)
    v1 = store.publish(make_checkpoint(tmp_path / "a.pt", 1))
    v2 = store.publish(make_checkpoint(tmp_path / "b.pt", 2))

    def cli(*args: str) -> tuple[int, str, str]:
        code = main(["models", *args, "--store", str(store_dir)])
        out = capsys.readouterr()
        return code, out.out, out.err

    code, listing, _ = cli("list")
    assert code == 0
    assert f"* {v2}" in listing and f"  {v1}" in listing
    assert cli("rollback")[1].strip() == f"serving {v1}"
    assert store.latest() == v1
    code, _, err = cli("show", "no-such-version")
    assert code == 1 and "no version 'no-such-version'" in err
