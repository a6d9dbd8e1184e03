"""Warm start (`grow_model`) on a really trained model: known items keep their index and
weights, the model scores them as before, new items start at the centre of the known ones, and
training continues from the grown model."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from seqrec.model.checkpoint import load_checkpoint
from seqrec.model.data import sequences_from_clicks, synthetic_clicks
from seqrec.model.train import TrainConfig, train
from seqrec.model.warmstart import NEW_ITEM_NOISE, grow_model

FAST = TrainConfig(epochs=2, progress=False, device="cpu", seed=1)


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory):
    data = sequences_from_clicks(synthetic_clicks(150, 40, seed=2))
    result = train(data, None, FAST, tmp_path_factory.mktemp("warm"), max_len=10, d_model=16, n_heads=2, n_blocks=1)
    return load_checkpoint(result.best_path)


def test_known_items_keep_index_weights_and_scores(trained) -> None:
    old_model, old_items = trained.model, trained.item_map
    new_ids = ["new-a", "new-b", "new-c"]
    grown, items = grow_model(old_model, old_items, [*old_items.to_list()[:5], *new_ids])
    n_old = len(old_items)
    assert items.to_list() == old_items.to_list() + new_ids
    assert grown.config.n_items == n_old + 3
    for name, value in old_model.state_dict().items():
        copied = grown.state_dict()[name]
        assert torch.equal(copied[: value.shape[0]], value), name
    grown.eval()
    histories = torch.tensor([[1, 2, 3, 4], [0, 0, 5, 6]])
    with torch.no_grad():
        before, after = old_model.score_last(histories), grown.score_last(histories)
    assert torch.allclose(after[:, : n_old + 1], before, atol=1e-5), "known items must score as before"


def test_new_items_start_near_the_centre_of_the_known_ones(trained) -> None:
    known = trained.model.item_emb.weight.detach()[1:]
    grown, _ = grow_model(trained.model, trained.item_map, ["new-a", "new-b"])
    new_rows = grown.item_emb.weight.detach()[-2:]
    offset = (new_rows - known.mean(0)).abs()
    assert torch.all(offset <= known.std(0) * NEW_ITEM_NOISE * 5), "new items must start as an average item"
    assert not torch.equal(new_rows[0], new_rows[1]), "a little noise tells new items apart"


def test_training_continues_from_the_grown_model(trained, tmp_path: Path) -> None:
    clicks = synthetic_clicks(150, 40, seed=2)
    renamed = [(user, "new-x" if item == clicks[0][1] else item, ts) for user, item, ts in clicks]
    data = sequences_from_clicks(renamed)
    init = grow_model(trained.model, trained.item_map, data.item_ids())
    result = train(data, None, FAST, tmp_path, init=init)
    after = load_checkpoint(result.best_path)
    assert after.config.d_model == trained.config.d_model and "new-x" in after.item_map
    assert after.item_map.to_list()[: len(trained.item_map)] == trained.item_map.to_list()
