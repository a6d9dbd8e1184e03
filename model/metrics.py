"""Ranking and diversity metrics over full-catalogue scores.

Accuracy, per user with one held-out target whose 0-based rank r is the number of items scored
strictly higher (ties favour the target):
    HR@K   = 1[r < K]
    NDCG@K = 1[r < K] / log2(r + 2)          (one relevant item, so IDCG = 1)
    MRR@K  = 1[r < K] / (r + 1)
Diversity of the top-K list L of each user, with A(i) the attribute/category set of item i:
    CC@K   = |union of A(i), i in L| / (number of categories in the catalogue), averaged over users
    ILD@K  = mean over pairs i != j in L of the Jaccard distance 1 - |A(i) & A(j)| / |A(i) | A(j)|,
             averaged over users; pairs where an item has no attributes are left out
    Coverage@K = |union of all users' L| / n_items (catalogue coverage, one number for the whole run)
"""

from __future__ import annotations

from itertools import combinations
from typing import Sequence

import torch

__all__ = [
    "MetricAccumulator",
    "catalogue_coverage",
    "category_coverage",
    "intra_list_diversity",
    "ranking_metrics",
    "target_ranks",
]


def target_ranks(scores: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """scores (B, N), targets (B,) column indices -> (B,) 0-based ranks (items scored strictly higher)."""
    target_scores = scores.gather(1, targets[:, None])  # (B, 1)
    return (scores > target_scores).sum(dim=1)


def ranking_metrics(ranks: torch.Tensor, k: int) -> dict[str, float]:
    """Mean HR@k, NDCG@k, MRR@k over the ranks (B,)."""
    hit = (ranks < k).double()
    r = ranks.double()
    return {
        f"HR@{k}": float(hit.mean()),
        f"NDCG@{k}": float((hit / torch.log2(r + 2)).mean()),
        f"MRR@{k}": float((hit / (r + 1)).mean()),
    }


def category_coverage(top: Sequence[Sequence[int]], categories: Sequence[frozenset], n_categories: int) -> float:
    """Mean share of all categories covered by each list."""
    if not top or n_categories == 0:
        return 0.0
    return sum(len(frozenset().union(*(categories[i] for i in row))) for row in top) / (len(top) * n_categories)


def _jaccard_distance(a: frozenset, b: frozenset) -> float:
    return 1.0 - len(a & b) / len(a | b)


def intra_list_diversity(top: Sequence[Sequence[int]], categories: Sequence[frozenset]) -> float:
    """Mean over lists of the mean pairwise Jaccard distance of the items' attribute sets."""
    per_list = []
    for row in top:
        dists = [_jaccard_distance(categories[i], categories[j]) for i, j in combinations(row, 2)
                 if categories[i] and categories[j]]
        if dists:
            per_list.append(sum(dists) / len(dists))
    return sum(per_list) / len(per_list) if per_list else 0.0


def catalogue_coverage(top: Sequence[Sequence[int]], n_items: int) -> float:
    return len({i for row in top for i in row}) / n_items if n_items else 0.0


class MetricAccumulator:
    """Collects batches of full-catalogue scores (B, n_items + 1) and their targets; `result()` gives
    every metric for every K. Categories (a set per item index, index 0 empty) enable CC and ILD."""

    def __init__(self, n_items: int, ks: Sequence[int] = (5, 10, 20), categories: Sequence[frozenset] | None = None):
        self.n_items = n_items
        self.ks = tuple(sorted(ks))
        self.categories = categories
        self.n_categories = len(frozenset().union(*categories)) if categories else 0
        self._ranks: list[torch.Tensor] = []
        self._top: list[list[int]] = []  # top max(K) per user

    def update(self, scores: torch.Tensor, targets: torch.Tensor) -> None:
        scores = scores.float()
        self._ranks.append(target_ranks(scores, targets.to(scores.device)).cpu())
        self._top.extend(scores.topk(min(self.ks[-1], self.n_items), dim=1).indices.cpu().tolist())

    def result(self) -> dict[str, float]:
        if not self._ranks:
            raise ValueError("no evaluation batches were added")
        ranks = torch.cat(self._ranks)
        out: dict[str, float] = {"users": float(ranks.numel())}
        for k in self.ks:
            out.update(ranking_metrics(ranks, k))
            top_k = [row[:k] for row in self._top]
            out[f"Coverage@{k}"] = catalogue_coverage(top_k, self.n_items)
            if self.categories is not None:
                out[f"CC@{k}"] = category_coverage(top_k, self.categories, self.n_categories)
                out[f"ILD@{k}"] = intra_list_diversity(top_k, self.categories)
        return out
