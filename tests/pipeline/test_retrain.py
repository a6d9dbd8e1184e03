"""The retraining job's quality gate and warm start, with really trained models."""

from __future__ import annotations

import random
from dataclasses import replace
from pathlib import Path

import pytest

from seqrec.model.config import ModelConfig
from seqrec.model.data import synthetic_clicks
from seqrec.model.inference import Recommender
from seqrec.model.train import TrainConfig
from seqrec.pipeline.evaluation.clicklog import clicks_from_rows
from seqrec.pipeline.lifecycle.model_store import ModelStore
from seqrec.pipeline.lifecycle.retrain import GatePolicy, retrain_once

FAST = TrainConfig(epochs=8, patience=3, batch_size=64, progress=False, seed=1)
SMALL = ModelConfig(n_items=1, max_len=20, d_model=32, n_heads=2, n_blocks=1, dropout=0.1)


@pytest.fixture(scope="module")
def clicks():
    return list(clicks_from_rows(synthetic_clicks(300, 120, n_clusters=6, seed=3)))


def test_first_run_publishes_and_a_worse_model_is_refused(clicks, tmp_path: Path) -> None:
    store = ModelStore(tmp_path / "store")
    first = retrain_once(clicks, store, train_config=FAST, model_config=SMALL, work_dir=tmp_path / "w1")
    assert first.published and store.latest() == first.version
    assert first.new_score > first.popularity_score > 0

    # Shuffle which item each training click names: the sequences carry no signal any more,
    # while the holdout (the most recent 10%) keeps the real behaviour.
    cut = int(len(clicks) * 0.9)
    items = [c.item_id for c in clicks[:cut]]
    random.Random(0).shuffle(items)
    shuffled = [replace(c, item_id=i) for c, i in zip(clicks[:cut], items)] + clicks[cut:]
    second = retrain_once(shuffled, store, train_config=FAST, model_config=SMALL, work_dir=tmp_path / "w2",
                          warm_start=False)
    assert not second.published, second.line()
    assert second.new_score < second.serving_score
    assert store.latest() == first.version, "a refused model must leave the serving one in place"


def test_a_first_model_that_learnt_nothing_is_refused_against_popularity(clicks, tmp_path: Path) -> None:
    """A first model has no serving model to beat; a failed training (one D-GenAtt seed in ten on
    ml-100k stopped at a third of softmax's score) must still not serve. lr = 0 keeps it untrained."""
    store = ModelStore(tmp_path / "store")
    untrained = retrain_once(clicks, store, train_config=replace(FAST, lr=0.0, epochs=1), model_config=SMALL,
                             work_dir=tmp_path / "w")
    assert not untrained.published, untrained.line()
    assert untrained.new_score < untrained.popularity_score
    assert "popular" in untrained.reason and store.latest() is None


def test_new_items_are_recommended_after_the_next_retrain(clicks, tmp_path: Path) -> None:
    store = ModelStore(tmp_path / "store")
    half = len(clicks) // 2
    retrain_once(clicks[:half], store, train_config=FAST, model_config=SMALL, work_dir=tmp_path / "w1")
    before = Recommender.from_checkpoint(store.checkpoint_path(store.latest()))

    # From the second half on, two popular items are relabelled as new catalogue entries.
    renamed = {"i0": "new-0", "i1": "new-1"}
    later = [replace(c, item_id=renamed.get(c.item_id, c.item_id)) for c in clicks[half:]]
    assert not set(renamed.values()) & set(before.item_map.to_list())
    outcome = retrain_once(clicks[:half] + later, store, train_config=FAST,
                           policy=GatePolicy(tolerance=1.0), work_dir=tmp_path / "w2")
    assert outcome.published, outcome.line()

    after = Recommender.from_checkpoint(store.checkpoint_path(store.latest()))
    assert set(renamed.values()) <= set(after.item_map.to_list())
    histories = [[c.item_id for c in later if c.user_id == u][-5:] for u in sorted({c.user_id for c in later})]
    recommended = {item for row in after.recommend(histories, k=10) for item, _ in row}
    assert recommended & set(renamed.values()), "the new items never reach anyone's top-10"
