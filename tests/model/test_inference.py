"""The batched recommendation API the pipeline calls."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from seqrec.model.checkpoint import save_checkpoint
from seqrec.model.config import ModelConfig
from seqrec.model.data import ItemMap
from seqrec.model.inference import Recommender
from seqrec.model.sasrec import SASRec

ITEMS = ItemMap([f"i{n}" for n in range(1, 21)])  # i1..i20 at indices 1..20


@pytest.fixture(scope="module")
def recommender(tmp_path_factory) -> Recommender:
    torch.manual_seed(0)
    model = SASRec(ModelConfig(n_items=20, max_len=5, d_model=8, n_heads=2))
    popularity = [0] + [0] * 20
    popularity[7], popularity[3], popularity[12] = 50, 40, 30
    path = tmp_path_factory.mktemp("ckpt") / "m.pt"
    version = save_checkpoint(path, model, ITEMS, data_fingerprint="f", metrics={}, item_popularity=popularity)
    rec = Recommender.from_checkpoint(path, device="cpu")
    assert rec.version == version and rec.device == torch.device("cpu")
    return rec


def test_excludes_seen_items(recommender: Recommender) -> None:
    history = [f"i{n}" for n in range(1, 16)]  # longer than max_len: the early items still count as seen
    out = recommender.recommend([history], k=10)[0]
    assert [i for i, _ in out] and not {i for i, _ in out} & set(history)
    assert len(out) == 5  # only 5 unseen items are left
    kept = recommender.recommend([history], k=20, exclude_seen=False)[0]
    assert len(kept) == 20 and [s for _, s in kept] == sorted((s for _, s in kept), reverse=True)


def test_unknown_items_are_skipped(recommender: Recommender) -> None:
    a, b = recommender.recommend([["i4", "zzz", "i9"], ["i4", "i9"]], k=5)
    assert [i for i, _ in a] == [i for i, _ in b]
    assert [s for _, s in a] == pytest.approx([s for _, s in b])


def test_empty_and_unknown_histories_get_popularity(recommender: Recommender) -> None:
    empty, unknown = recommender.recommend([[], ["nope"]], k=3)
    assert [i for i, _ in empty] == ["i7", "i3", "i12"]
    assert unknown == empty
    assert [s for _, s in empty] == pytest.approx([50 / 120, 40 / 120, 30 / 120])
    assert recommender.recommend([["i7"]], k=2)[0][0][0] != "i7"


def test_batch_matches_single_calls_and_truncation(recommender: Recommender) -> None:
    histories = [["i1", "i2"], ["i3"], [f"i{n}" for n in range(1, 20)]]
    batched = recommender.recommend(histories, k=4)
    for history, row in zip(histories, batched):
        single = recommender.recommend([history], k=4)[0]
        assert [i for i, _ in single] == [i for i, _ in row]
        assert [s for _, s in single] == pytest.approx([s for _, s in row], abs=1e-5)
    # Only the newest max_len=5 items feed the model (exclusion off: the same scores).
    tail = recommender.recommend([histories[2][-5:]], k=4, exclude_seen=False)
    assert tail == recommender.recommend([histories[2]], k=4, exclude_seen=False)


def test_arguments(recommender: Recommender) -> None:
    assert recommender.recommend([], k=3) == []
    with pytest.raises(ValueError):
        recommender.recommend([["i1"]], k=0)
