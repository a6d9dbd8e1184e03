"""Full-ranking evaluation: exclusion of seen items, batching, the popularity baseline."""

from __future__ import annotations

import math

import pytest
import torch

from seqrec.model.data import Split
from seqrec.model.evaluate import PopularityScorer, evaluate_sequences, evaluate_split, user_metrics


class FixedScores:
    """A ScoreFn that scores item i as i (item 4 best), whatever the history."""

    n_items, max_len = 4, 5

    def __call__(self, items: torch.Tensor) -> torch.Tensor:
        s = torch.arange(5, dtype=torch.float32).expand(items.shape[0], -1).clone()
        s[:, 0] = float("-inf")
        return s


def test_exclude_seen_moves_ranks_and_counts_seen_targets() -> None:
    histories, targets = [[4], [4, 3], [2]], [3, 2, 2]
    kept = evaluate_sequences(FixedScores(), histories, targets, ks=(1, 2), exclude_seen=False)
    # ranks without exclusion: 3 -> 1, 2 -> 2, 2 -> 2
    assert kept["HR@1"] == 0.0 and kept["HR@2"] == pytest.approx(1 / 3)
    excl = evaluate_sequences(FixedScores(), histories, targets, ks=(1, 2), exclude_seen=True, batch_size=2)
    # with exclusion: user 0 target 3 -> rank 0; user 1 target 2 -> rank 0; user 2 target 2 was seen -> miss
    assert excl["HR@1"] == pytest.approx(2 / 3) and excl["targets_in_history"] == 1.0
    assert excl["exclude_seen"] == 1.0 and kept["exclude_seen"] == 0.0


def test_user_metrics_follow_the_input_order() -> None:
    # Lengths 3, 1, 2: evaluation sorts users by length internally; the result must not.
    histories, targets = [[1, 1, 1], [1], [1, 1]], [2, 4, 3]
    per_user = user_metrics(FixedScores(), histories, targets, k=2, exclude_seen=False, batch_size=2)
    # ranks 2, 0, 1 -> HR@2 0, 1, 1; NDCG@2 0, 1, 1/log2(3)
    assert per_user["HR@2"].tolist() == [0.0, 1.0, 1.0]
    assert per_user["NDCG@2"].tolist() == pytest.approx([0.0, 1.0, 1 / math.log2(3)])
    whole = evaluate_sequences(FixedScores(), histories, targets, ks=(2,), exclude_seen=False)
    assert float(per_user["NDCG@2"].mean()) == pytest.approx(whole["NDCG@2"])


def test_popularity_baseline_and_split_inputs() -> None:
    split = Split(train=[[1, 1, 2], [1, 3], [2]], valid_target=[3, 4, 0], test_target=[4, 1, 0], n_items=4)
    pop = PopularityScorer(split)
    assert pop(torch.zeros(1, 3, dtype=torch.long))[0, 1:].tolist() == [3.0, 2.0, 1.0, 0.0]
    valid = evaluate_split(pop, split, "valid", ks=(1, 3), exclude_seen=False)
    # valid targets 3 (rank 2) and 4 (rank 3): HR@3 = 1/2
    assert valid["users"] == 2 and valid["HR@3"] == 0.5 and valid["HR@1"] == 0.0
    with pytest.raises(ValueError, match="valid' or 'test"):
        evaluate_split(pop, split, "train")
