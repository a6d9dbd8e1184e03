"""The directory model store: versions, promotion, rollback, retention, refusal of bad files and
of architectures the serving workers would refuse. The checkpoints are really trained (a second
each), so their metrics are the ones `seqrec train` writes."""

from __future__ import annotations

from pathlib import Path

import pytest

from seqrec.model.data import sequences_from_clicks, synthetic_clicks
from seqrec.model.errors import CheckpointError
from seqrec.model.train import TrainConfig, train
from seqrec.pipeline.cli import main
from seqrec.pipeline.lifecycle.model_store import DirectoryModelStore, IncompatibleVersionError


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Four same-shape checkpoints (seeds 1-4) and one wider one."""
    data = sequences_from_clicks(synthetic_clicks(120, 40, seed=1))
    root = tmp_path_factory.mktemp("trained")

    def one(name: str, seed: int, d_model: int = 8) -> Path:
        return train(data, None, TrainConfig(epochs=1, progress=False, device="cpu", seed=seed), root / name,
                     max_len=8, d_model=d_model, n_heads=2, n_blocks=1).best_path

    return {**{str(seed): one(f"s{seed}", seed) for seed in range(1, 5)}, "wider": one("wider", 1, d_model=16)}


def make_checkpoint(trained: dict[str, Path], path: Path, seed: int) -> Path:
    path.write_bytes(trained[str(seed)].read_bytes())
    return path


def test_publish_promote_and_rollback(trained, tmp_path: Path) -> None:
    store = DirectoryModelStore(tmp_path / "store")
    assert store.latest() is None
    v1 = store.publish(make_checkpoint(trained, tmp_path / "a.pt", 1))
    v2 = store.publish(make_checkpoint(trained, tmp_path / "b.pt", 2))
    assert v1 != v2
    assert store.latest() == v2
    assert [v.version for v in store.versions()] == [v1, v2]
    assert store.rollback() == v1
    assert store.latest() == v1
    with pytest.raises(CheckpointError, match="nothing to roll back"):
        store.rollback()
    store.promote(v2)
    assert store.latest() == v2


def test_publish_without_promotion_keeps_serving_version(trained, tmp_path: Path) -> None:
    store = DirectoryModelStore(tmp_path / "store")
    v1 = store.publish(make_checkpoint(trained, tmp_path / "a.pt", 1))
    v2 = store.publish(make_checkpoint(trained, tmp_path / "b.pt", 2), promote=False)
    assert store.latest() == v1
    assert store.info(v2).quality == pytest.approx(store.info(v2).metrics["valid"]["NDCG@10"])


def test_corrupt_checkpoint_is_refused_and_serving_unchanged(trained, tmp_path: Path) -> None:
    store = DirectoryModelStore(tmp_path / "store")
    v1 = store.publish(make_checkpoint(trained, tmp_path / "a.pt", 1))
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"definitely not a checkpoint")
    with pytest.raises(CheckpointError):
        store.publish(bad)
    assert store.latest() == v1
    assert len(store.versions()) == 1


def test_retention_keeps_last_n_and_rollback_targets(trained, tmp_path: Path) -> None:
    store = DirectoryModelStore(tmp_path / "store", keep=2)
    versions = [store.publish(make_checkpoint(trained, tmp_path / f"{i}.pt", i)) for i in range(1, 5)]
    kept = [v.version for v in store.versions()]
    assert kept == versions[-2:]
    assert store.rollback() == versions[-2]


def test_models_cli_lists_and_rolls_back(trained, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    store_dir = tmp_path / "store"
    store = DirectoryModelStore(store_dir)
    v1 = store.publish(make_checkpoint(trained, tmp_path / "a.pt", 1))
    v2 = store.publish(make_checkpoint(trained, tmp_path / "b.pt", 2))

    def cli(*args: str) -> tuple[int, str, str]:
        code = main(["models", *args, "--store", str(store_dir)])
        out = capsys.readouterr()
        return code, out.out, out.err

    code, listing, _ = cli("list")
    assert code == 0
    assert f"* {v2}" in listing and f"  {v1}" in listing
    # The quality column: the validation NDCG@10 that training stored in each checkpoint.
    for version in (v1, v2):
        line = next(row for row in listing.splitlines() if version in row)
        assert f"valid NDCG@10 {store.info(version).quality:.4f}" in line, line
    assert cli("rollback")[1].strip() == f"serving {v1}"
    assert store.latest() == v1
    code, _, err = cli("show", "no-such-version")
    assert code == 1 and "no version 'no-such-version'" in err


def test_list_survives_an_unreadable_file_and_marks_it(trained, tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    store = DirectoryModelStore(tmp_path / "store")
    v1 = store.publish(make_checkpoint(trained, tmp_path / "a.pt", 1))
    v2 = store.publish(make_checkpoint(trained, tmp_path / "b.pt", 2))
    store.checkpoint_path(v1).write_bytes(b"a damaged volume")
    assert main(["models", "list", "--store", str(store.root)]) == 0
    listing = sorted(capsys.readouterr().out.splitlines(), key=lambda row: v1 not in row)
    assert len(listing) == 2
    assert listing[0].startswith(f" !{v1}  unreadable: not a seqrec checkpoint"), listing
    assert listing[1].startswith(f"* {v2}") and "valid NDCG@10" in listing[1], listing


def test_incompatible_architecture_is_refused_unless_forced(trained, tmp_path: Path,
                                                           capsys: pytest.CaptureFixture[str],
                                                           caplog: pytest.LogCaptureFixture) -> None:
    store_dir = tmp_path / "store"
    store = DirectoryModelStore(store_dir)
    v1 = store.publish(make_checkpoint(trained, tmp_path / "a.pt", 1))
    wider = trained["wider"]

    assert main(["models", "publish", str(wider), "--store", str(store_dir)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "cannot replace the serving version" in err[0] and "d_model is 16" in err[0], err
    assert "--force-incompatible" in err[0]
    assert store.latest() == v1 and len(store.versions()) == 1, "a refused version must not enter the store"

    v_wide = store.publish(wider, promote=False)  # stored, not serving: nothing to refuse
    with pytest.raises(IncompatibleVersionError, match="d_model is 16, the serving model has 8"):
        store.promote(v_wide)
    assert store.latest() == v1

    assert main(["models", "promote", v_wide, "--store", str(store_dir), "--force-incompatible"]) == 0
    assert store.latest() == v_wide
    assert "running workers keep serving" in caplog.text and v1 in caplog.text
