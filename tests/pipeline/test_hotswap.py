"""Hot-swap logic against a real model store and real checkpoints (the broker test is in
test_worker_hotswap.py): new versions swap in, bad ones are refused while the old one serves."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
import torch

from seqrec.model.checkpoint import save_checkpoint
from seqrec.model.config import ModelConfig
from seqrec.model.data import ItemMap
from seqrec.model.inference import Recommender
from seqrec.model.sasrec import SASRec
from seqrec.pipeline.lifecycle.hotswap import HotSwapper
from seqrec.pipeline.lifecycle.model_store import ModelStore
from seqrec.pipeline.serving.runner import Runner
from seqrec.pipeline.settings import ServingSettings

ITEMS = [f"i{n}" for n in range(20)]


def checkpoint(path: Path, seed: int, items: list[str] = ITEMS, **config: object) -> Path:
    torch.manual_seed(seed)
    shape = {"max_len": 10, "d_model": 16, "n_heads": 2, "n_blocks": 1, **config}
    model = SASRec(ModelConfig(n_items=len(items), **shape))
    save_checkpoint(path, model, ItemMap.from_list(items), data_fingerprint=str(seed), metrics={})
    return path


@pytest.fixture
def serving(tmp_path: Path) -> tuple[ModelStore, Runner, HotSwapper, list[str]]:
    store = ModelStore(tmp_path / "store")
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


@pytest.mark.parametrize("damage, reason", [
    ("garbage", "does not match its checksum"),  # a damaged volume
    ("another model", "does not match its checksum"),  # a valid file, not the one published
    ("no manifest", "has no manifest"),  # a publisher that died before vouching for it
])
def test_a_version_whose_bytes_are_not_the_published_ones_is_refused(serving, tmp_path: Path, damage: str,
                                                                    reason: str) -> None:
    store, runner, swapper, _ = serving
    v1 = runner.version
    v2 = store.publish(checkpoint(tmp_path / "v2.pt", 2), promote=False)
    stored = Path(store.url, "versions", f"{v2}.pt")
    if damage == "garbage":
        stored.write_bytes(b"\x00garbage")
    elif damage == "another model":
        stored.write_bytes(checkpoint(tmp_path / "v3.pt", 3).read_bytes())
    else:
        Path(store.url, "versions", f"{v2}.json").unlink()
    Path(store.url, "LATEST").write_text(f"{v2}\n")  # the pointer names it all the same
    assert asyncio.run(swapper.check()) is None
    assert runner.version == v1
    assert reason in swapper.refused[v2]


def test_an_unreachable_store_backs_off_one_line_per_look_and_recovers(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    store = ModelStore(f"memory://hotswap-{tmp_path.name}")
    v1 = store.publish(checkpoint(tmp_path / "v1.pt", 1))
    runner = Runner(Recommender.from_checkpoint(store.checkpoint_path(v1)), top_k=5)
    swapper = HotSwapper(runner, store, serving=ServingSettings(model_poll_s=0.01))
    v2 = store.publish(checkpoint(tmp_path / "v2.pt", 2))
    looks = 0

    def unreachable(*args: object, **kwargs: object) -> bytes:
        nonlocal looks
        looks += 1
        raise ConnectionRefusedError("Connection refused")

    monkeypatch.setattr(store.fs, "cat_file", unreachable)
    polls, deadline = 0, time.monotonic() + 0.7
    while time.monotonic() < deadline:  # the worker's timer, every millisecond here
        assert asyncio.run(swapper.check()) is None
        polls += 1
    lines = [r.getMessage() for r in caplog.records if "cannot read the model store" in r.getMessage()]
    # Looks 0.02, 0.04, 0.08, ... s apart: about 6 in 0.7 s, against hundreds of polls.
    assert 4 <= looks <= 8 and polls > 100, (looks, polls)
    assert len(lines) == looks and all("\n" not in line and store.url in line for line in lines), lines
    assert all(r.exc_info is None for r in caplog.records), "a failed look is one line, no traceback"
    assert runner.version == v1

    monkeypatch.undo()  # the store answers again: the next look (after its wait) swaps
    deadline = time.monotonic() + 5
    while runner.version != v2 and time.monotonic() < deadline:
        asyncio.run(swapper.check())
    assert runner.version == v2 and swapper.failures == 0


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
