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

import math
from typing import Sequence

import torch

__all__ = [
    "MetricAccumulator",
    "catalogue_coverage",
    "catalogue_share",
    "category_matrix",
    "category_coverage",
    "intra_list_diversity",
    "paired_difference",
    "ranking_metrics",
    "target_ranks",
    "user_category_coverage",
    "user_ranking_metrics",
]


def target_ranks(scores: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """scores (B, N), targets (B,) column indices -> (B,) 0-based ranks (items scored strictly higher)."""
    target_scores = scores.gather(1, targets[:, None])  # (B, 1)
    return (scores > target_scores).sum(dim=1)


def user_ranking_metrics(ranks: torch.Tensor, k: int) -> dict[str, torch.Tensor]:
    """HR@k, NDCG@k, MRR@k of each user, (B,) float64 each, for the ranks (B,)."""
    hit = (ranks < k).double()
    r = ranks.double()
    return {f"HR@{k}": hit, f"NDCG@{k}": hit / torch.log2(r + 2), f"MRR@{k}": hit / (r + 1)}


def ranking_metrics(ranks: torch.Tensor, k: int) -> dict[str, float]:
    """Mean HR@k, NDCG@k, MRR@k over the ranks (B,)."""
    return {name: float(values.mean()) for name, values in user_ranking_metrics(ranks, k).items()}


def paired_difference(candidate: torch.Tensor, baseline: torch.Tensor) -> dict[str, float]:
    """Per-user metric values of two models on the same users -> the mean difference (candidate −
    baseline), its 95 % confidence interval and two-sided p-value (normal approximation of the paired
    mean, sound for the thousands of users of an evaluation), and how many users each model served
    better. This is the user-sampling noise of one pair of runs; the noise between training seeds
    comes on top."""
    if candidate.shape != baseline.shape or candidate.dim() != 1:
        raise ValueError(f"need two (U,) vectors of the same users, got {tuple(candidate.shape)} and {tuple(baseline.shape)}")
    n = candidate.numel()
    if n < 2:
        raise ValueError("need at least two users")
    diff = candidate.double() - baseline.double()
    mean, stderr = float(diff.mean()), float(diff.std()) / math.sqrt(n)
    p_value = math.erfc(abs(mean) / stderr / math.sqrt(2)) if stderr > 0 else float(mean == 0)
    return {"mean": mean, "ci_low": mean - 1.96 * stderr, "ci_high": mean + 1.96 * stderr, "p_value": p_value,
            "better": int((diff > 0).sum()), "worse": int((diff < 0).sum()), "users": n}


def category_matrix(categories: Sequence[frozenset]) -> torch.Tensor:
    """Attribute sets per item index -> (n_items + 1, n_categories) multi-hot float matrix."""
    names = sorted(frozenset().union(*categories)) if categories else []
    column = {c: j for j, c in enumerate(names)}
    m = torch.zeros(len(categories), len(names))
    for i, cats in enumerate(categories):
        for c in cats:
            m[i, column[c]] = 1.0
    return m


def _chunks(top: torch.Tensor, size: int = 1024):
    for start in range(0, top.shape[0], size):
        yield top[start:start + size]


def user_category_coverage(top: torch.Tensor, cats: torch.Tensor) -> torch.Tensor:
    """top (U, K) item indices, cats (N+1, C) multi-hot -> (U,) share of the C categories in each list."""
    if top.numel() == 0 or cats.shape[1] == 0:
        return torch.zeros(top.shape[0], dtype=torch.float64)
    covered = torch.cat([(cats[chunk].amax(dim=1) > 0).sum(dim=1) for chunk in _chunks(top)])
    return covered.double() / cats.shape[1]


def category_coverage(top: torch.Tensor, cats: torch.Tensor) -> float:
    """Mean of `user_category_coverage` over the lists (0.0 for none)."""
    return float(user_category_coverage(top, cats).mean()) if top.shape[0] else 0.0


def intra_list_diversity(top: torch.Tensor, cats: torch.Tensor) -> float:
    """Mean over lists of the mean pairwise Jaccard distance of the items' attribute sets; pairs with an
    attribute-less item are left out, and so are lists with no pair left."""
    total, lists = 0.0, 0
    k = top.shape[1]
    upper = torch.ones(k, k, dtype=torch.bool).triu(diagonal=1)  # each pair i < j once
    for chunk in _chunks(top):
        a = cats[chunk]  # (u, K, C)
        inter = a @ a.transpose(1, 2)  # (u, K, K)
        size = a.sum(-1)  # (u, K)
        union = size[:, :, None] + size[:, None, :] - inter
        pair = upper & (size[:, :, None] > 0) & (size[:, None, :] > 0)  # (u, K, K)
        dist = torch.where(pair, 1 - inter / union.clamp(min=1), torch.zeros(()))
        n_pairs = pair.sum(dim=(1, 2))
        has = n_pairs > 0
        total += float((dist.sum(dim=(1, 2))[has] / n_pairs[has]).sum())
        lists += int(has.sum())
    return total / lists if lists else 0.0


def catalogue_share(n_shown: int, n_items: int) -> float:
    """Coverage@K from the number of distinct items any list showed (0.0 for an empty catalogue)."""
    return n_shown / n_items if n_items else 0.0


def catalogue_coverage(top: torch.Tensor, n_items: int) -> float:
    """Coverage@K of the lists top (U, K) of item indices."""
    return catalogue_share(top.unique().numel(), n_items)


class MetricAccumulator:
    """Collects batches of full-catalogue scores (B, n_items + 1) and their targets; `result()` gives
    every metric for every K. Categories (a set per item index, index 0 empty) enable CC and ILD."""

    def __init__(self, n_items: int, ks: Sequence[int] = (5, 10, 20), categories: Sequence[frozenset] | None = None):
        self.n_items = n_items
        self.ks = tuple(sorted(ks))
        self.cats = category_matrix(categories) if categories is not None else None
        self._ranks: list[torch.Tensor] = []
        self._top: list[torch.Tensor] = []  # (B, max K) per batch

    def update(self, scores: torch.Tensor, targets: torch.Tensor) -> None:
        scores = scores.float()
        self._ranks.append(target_ranks(scores, targets.to(scores.device)).cpu())
        self._top.append(scores.topk(min(self.ks[-1], self.n_items), dim=1).indices.cpu())

    def user_metrics(self, k: int) -> dict[str, torch.Tensor]:
        """HR, NDCG, MRR (and CC with categories) at k of each user, (U,) each, in update order."""
        if not self._ranks:
            raise ValueError("no evaluation batches were added")
        out = user_ranking_metrics(torch.cat(self._ranks), k)
        if self.cats is not None:
            out[f"CC@{k}"] = user_category_coverage(torch.cat(self._top)[:, :k], self.cats)
        return out

    def result(self) -> dict[str, float]:
        if not self._ranks:
            raise ValueError("no evaluation batches were added")
        ranks = torch.cat(self._ranks)
        top = torch.cat(self._top)  # (U, max K)
        out: dict[str, float] = {"users": float(ranks.numel())}
        for k in self.ks:
            out.update(ranking_metrics(ranks, k))
            top_k = top[:, :k]
            out[f"Coverage@{k}"] = catalogue_coverage(top_k, self.n_items)
            if self.cats is not None:
                out[f"CC@{k}"] = category_coverage(top_k, self.cats)
                out[f"ILD@{k}"] = intra_list_diversity(top_k, self.cats)
        return out
