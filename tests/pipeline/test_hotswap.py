"""Hot-swap logic against a real model store and real checkpoints (the broker test is in
test_worker_hotswap.py): new versions swap in, bad ones are refused while the old one serves."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
import torch

from seqrec.model.checkpoint import save_checkpoint
from seqrec.model.config import ModelConfig
from seqrec.model.data import ItemMap
from seqrec.model.inference import Recommender
from seqrec.model.sasrec import SASRec
from seqrec.pipeline.lifecycle.hotswap import HotSwapper
from seqrec.pipeline.lifecycle.model_store import DirectoryModelStore
from seqrec.pipeline.serving.runner import Runner

ITEMS = [f"i{n}" for n in range(20)]


def checkpoint(path: Path, seed: int, items: list[str] = ITEMS, **config: object) -> Path:
    torch.manual_seed(seed)
    shape = {"max_len": 10, "d_model": 16, "n_heads": 2, "n_blocks": 1, **config}
    model = SASRec(ModelConfig(n_items=len(items), **shape))
    save_checkpoint(path, model, ItemMap.from_list(items), data_fingerprint=str(seed), metrics={})
    return path


@pytest.fixture
def serving(tmp_path: Path) -> tuple[DirectoryModelStore, Runner, HotSwapper, list[str]]:
    store = DirectoryModelStore(tmp_path / "store")
    v1 = store.publish(checkpoint(tmp_path / "v1.pt", 1))
    runner = Runner(Recommender.from_checkpoint(store.checkpoint_path(v1)), top_k=5)
    swapped: list[str] = []
    return store, runner, HotSwapper(runner, store, on_swap=swapped.append), swapped


def test_new_version_and_rollback_swap_in(serving, tmp_path: Path) -> None:
    store, runner, swapper, swapped = serving
    v1 = runner.version
    assert asyncio.run(swapper.check()) is None  # nothing new
    v2 = store.publish(checkpoint(tmp_path / "v2.pt", 2, items=ITEMS + ["new"]))
    assert asyncio.run(swapper.check()) == v2
    assert runner.version == v2
    assert asyncio.run(runner.score([["i1", "new"]]))[0] == v2
    store.rollback()
    assert asyncio.run(swapper.check()) == v1
    assert swapped == [v2, v1]


@pytest.mark.parametrize(
    "make_bad,reason",
    [
        (lambda d: checkpoint(d / "bad.pt", 3, attention="vgenatt"), "attention"),
        (lambda d: checkpoint(d / "bad.pt", 3, d_model=32), "d_model"),
    ],
)
def test_incompatible_version_is_refused_and_old_keeps_serving(serving, tmp_path: Path, make_bad, reason) -> None:
    store, runner, swapper, swapped = serving
    v1 = runner.version
    bad = store.publish(make_bad(tmp_path), force_incompatible=True)  # as an operator could
    assert asyncio.run(swapper.check()) is None
    assert runner.version == v1 and not swapped
    assert reason in swapper.refused[bad]
    assert asyncio.run(swapper.check()) is None, "a refused version is not retried"
    assert asyncio.run(runner.score([["i1"]]))[0] == v1


def test_corrupt_file_in_the_store_is_refused(serving) -> None:
    store, runner, swapper, _ = serving
    v1 = runner.version
    # A damaged volume: the pointer names a version whose file is garbage.
    (store.versions_dir / "20990101T000000Z-deadbeef.pt").write_bytes(b"\x00garbage")
    (store.root / "LATEST").write_text("20990101T000000Z-deadbeef\n")
    assert asyncio.run(swapper.check()) is None
    assert runner.version == v1
    assert "not a seqrec checkpoint" in swapper.refused["20990101T000000Z-deadbeef"]


def test_model_with_non_finite_outputs_is_refused_by_the_smoke_test(serving, tmp_path: Path) -> None:
    store, runner, swapper, swapped = serving
    v1 = runner.version
    path = checkpoint(tmp_path / "nan.pt", 4)
    broken = Recommender.from_checkpoint(path)
    with torch.no_grad():
        broken.model.ln_final.weight.fill_(float("nan"))  # a diverged training run
    save_checkpoint(path, broken.model, broken.item_map, data_fingerprint="nan", metrics={})
    bad = store.publish(path)  # it reads and fits the architecture: only running it shows the fault
    assert asyncio.run(swapper.check()) is None
    assert runner.version == v1 and not swapped
    assert "non-finite scores" in swapper.refused[bad]
    assert asyncio.run(runner.score([["i1"]]))[0] == v1
