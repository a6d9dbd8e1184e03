"""Metrics on hand-computed cases."""

from __future__ import annotations

import math

import pytest
import torch

from seqrec.model.metrics import (
    MetricAccumulator,
    catalogue_coverage,
    category_coverage,
    category_matrix,
    intra_list_diversity,
    paired_difference,
    ranking_metrics,
    target_ranks,
    user_category_coverage,
)


def test_target_ranks_count_strictly_higher_scores() -> None:
    scores = torch.tensor([[float("-inf"), 0.9, 0.5, 0.1], [float("-inf"), 0.2, 0.2, 0.7]])
    # user 0: target 2 (0.5), one item higher -> rank 1; user 1: target 1 (0.2), tie with 2 -> rank 1
    assert target_ranks(scores, torch.tensor([2, 1])).tolist() == [1, 1]


def test_ranking_metrics_by_hand() -> None:
    ranks = torch.tensor([0, 1, 4, 10])  # 0-based
    m = ranking_metrics(ranks, 5)
    assert m["HR@5"] == pytest.approx(3 / 4)
    assert m["NDCG@5"] == pytest.approx((1 + 1 / math.log2(3) + 1 / math.log2(6)) / 4)
    assert m["MRR@5"] == pytest.approx((1 + 1 / 2 + 1 / 5) / 4)
    m1 = ranking_metrics(ranks, 1)
    assert (m1["HR@1"], m1["NDCG@1"], m1["MRR@1"]) == (0.25, 0.25, 0.25)


CATS = [frozenset(), frozenset({"a"}), frozenset({"a", "b"}), frozenset({"c"}), frozenset()]
M = category_matrix(CATS)  # columns a, b, c


def test_category_matrix() -> None:
    assert M.tolist() == [[0, 0, 0], [1, 0, 0], [1, 1, 0], [0, 0, 1], [0, 0, 0]]


def test_category_coverage_by_hand() -> None:
    # 3 categories in all; list 1 covers {a, b} (2/3), list 2 covers {a, c} (2/3), list 3 {c} (1/3)
    top = torch.tensor([[1, 2], [1, 3], [3, 4]])
    assert category_coverage(top, M) == pytest.approx((2 / 3 + 2 / 3 + 1 / 3) / 3)
    assert user_category_coverage(top, M).tolist() == pytest.approx([2 / 3, 2 / 3, 1 / 3])


def test_paired_difference_by_hand() -> None:
    base = torch.tensor([0.0, 0.5, 1.0, 0.2])
    cand = torch.tensor([0.1, 0.5, 1.3, 0.0])  # differences .1, 0, .3, -.2
    d = paired_difference(cand, base)
    diffs = torch.tensor([0.1, 0.0, 0.3, -0.2], dtype=torch.float64)
    stderr = float(diffs.std()) / 2
    assert d["mean"] == pytest.approx(0.05)
    assert (d["ci_low"], d["ci_high"]) == pytest.approx((0.05 - 1.96 * stderr, 0.05 + 1.96 * stderr))
    assert d["p_value"] == pytest.approx(math.erfc(0.05 / stderr / math.sqrt(2)))
    assert (d["better"], d["worse"], d["users"]) == (2, 1, 4)


def test_paired_difference_separates_a_shift_from_noise() -> None:
    g = torch.Generator().manual_seed(0)
    base = torch.rand(5000, generator=g)
    shifted = paired_difference(base + 0.01 + 0.05 * torch.randn(5000, generator=g), base)
    assert shifted["ci_low"] > 0 and shifted["p_value"] < 1e-6
    noise = paired_difference(base + 0.05 * torch.randn(5000, generator=g), base)
    assert noise["ci_low"] < 0 < noise["ci_high"] and noise["p_value"] > 0.01
    same = paired_difference(base, base)
    assert (same["mean"], same["p_value"], same["better"], same["worse"]) == (0.0, 1.0, 0, 0)
    with pytest.raises(ValueError, match="same users"):
        paired_difference(base, base[:-1])


def test_intra_list_diversity_by_hand() -> None:
    # pairs: (1,2): 1 - 1/2 = 0.5; (1,3): 1; (2,3): 1 -> mean 2.5/3. Second list: item 4 has no
    # attributes, so only (1,3) counts -> 1. Mean over lists: (2.5/3 + 1) / 2.
    top = torch.tensor([[1, 2, 3], [1, 3, 4]])
    assert intra_list_diversity(top, M) == pytest.approx((2.5 / 3 + 1) / 2)
    assert intra_list_diversity(torch.tensor([[1, 1]]), M) == 0.0  # identical attributes: no diversity
    assert intra_list_diversity(torch.tensor([[4, 0]]), M) == 0.0  # no pair with attributes: left out


def test_catalogue_coverage_by_hand() -> None:
    assert catalogue_coverage(torch.tensor([[1, 2], [2, 3]]), 4) == 0.75


def test_accumulator_combines_batches() -> None:
    acc = MetricAccumulator(4, ks=(1, 2), categories=CATS)
    inf = float("-inf")
    acc.update(torch.tensor([[inf, 3.0, 2.0, 1.0, 0.0]]), torch.tensor([1]))  # rank 0, top [1, 2]
    acc.update(torch.tensor([[inf, 0.0, 1.0, 2.0, 3.0]]), torch.tensor([3]))  # rank 1, top [4, 3]
    r = acc.result()
    assert r["users"] == 2
    assert r["HR@1"] == 0.5 and r["HR@2"] == 1.0
    assert r["NDCG@2"] == pytest.approx((1 + 1 / math.log2(3)) / 2)
    assert r["Coverage@1"] == 0.5 and r["Coverage@2"] == 1.0
    assert r["CC@2"] == pytest.approx((2 / 3 + 1 / 3) / 2)


def test_accumulator_without_batches_raises() -> None:
    with pytest.raises(ValueError):
        MetricAccumulator(3).result()
