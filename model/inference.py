"""Batched next-item recommendation on raw item ids: the one call the pipeline makes.

    rec = Recommender.from_checkpoint("runs/ml1m/best.pt")
    rec.recommend([["1", "48", "3"], [], ["unknown", "7"]], k=10)
    # -> [[("2858", 9.1), ...], [popularity fallback], [...]]

One forward per call, no gradient, on the model's device. Unknown items are skipped; a history with
no known item gets the most popular training items. Histories longer than max_len keep the newest.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Callable, Sequence

import torch

from seqrec.model.checkpoint import LoadedCheckpoint, load_checkpoint
from seqrec.model.config import ModelConfig
from seqrec.model.data import ItemMap, pad_left
from seqrec.model.sasrec import SASRec

__all__ = ["Recommender", "default_device", "exclude_items", "ranking_scores"]

log = logging.getLogger(__name__)


def default_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def exclude_items(scores: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
    """In place: scores (B, N+1) get -inf at every item index in items (B, L) (0 = padding, harmless:
    its column is -inf already)."""
    return scores.scatter_(1, items, float("-inf"))


def ranking_scores(
    score_fn: Callable[[torch.Tensor], torch.Tensor],
    items: torch.Tensor,
    seen: torch.Tensor | None = None,
    fallback: torch.Tensor | None = None,
) -> torch.Tensor:
    """The full-catalogue scores (B, N+1), float32, that serving and evaluation both rank: score_fn on
    the left-padded items (B, L); all-padding rows take `fallback` (N+1,) when given; then -inf at
    every index in `seen` (B, M) when given."""
    scores = score_fn(items).float()
    if fallback is not None:
        empty = ~(items != 0).any(dim=1)  # (B,)
        if bool(empty.any()):
            scores[empty] = fallback
    if seen is not None:
        exclude_items(scores, seen)
    return scores


class Recommender:
    def __init__(
        self,
        model: SASRec,
        item_map: ItemMap,
        item_popularity: Sequence[int] | None = None,
        version: str = "unversioned",
        device: str | torch.device | None = None,
    ) -> None:
        if len(item_map) != model.config.n_items:
            raise ValueError(f"item map holds {len(item_map)} ids, model has n_items={model.config.n_items}")
        self.device = torch.device(device) if device is not None else default_device()
        self.model = model.to(self.device).eval()
        self.item_map = item_map
        self.version = version
        self.max_len = model.config.max_len
        pop = list(item_popularity) if item_popularity is not None else [0] * (len(item_map) + 1)
        # Fallback scores for histories with no known item: each item's share of training clicks.
        counts = torch.tensor(pop, dtype=torch.float32)
        self._popularity = (counts / max(float(counts.sum()), 1.0)).to(self.device)
        self._popularity[0] = float("-inf")

    @classmethod
    def from_checkpoint(cls, path: str | Path, device: str | torch.device | None = None) -> "Recommender":
        device = torch.device(device) if device is not None else default_device()
        ckpt = load_checkpoint(path, device=device)
        log.info("recommender %s loaded from %s on %s", ckpt.version, path, device)
        return cls.from_loaded(ckpt, device=device)

    @classmethod
    def from_loaded(cls, ckpt: LoadedCheckpoint, device: str | torch.device | None = None) -> "Recommender":
        """A recommender on a checkpoint already in memory (its model moves to `device`)."""
        return cls(ckpt.model, ckpt.item_map, ckpt.item_popularity, version=ckpt.version, device=device)

    @property
    def config(self) -> ModelConfig:
        """The architecture it serves (what a hot swap must keep)."""
        return self.model.config

    @torch.inference_mode()
    def recommend_indices(
        self, items: torch.Tensor, k: int = 10, exclude_seen: bool = True, seen: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """items (B, L) left-padded indices, L <= max_len -> (scores (B, k'), indices (B, k')),
        k' = min(k, n_items). All-padding rows get popularity scores. With exclude_seen, the indices in
        `seen` (B, M) (default: `items`) are never recommended; they come back with score -inf only
        when fewer than k' other items remain."""
        items = items.to(self.device)
        seen = (seen if seen is not None else items).to(self.device) if exclude_seen else None
        scores = ranking_scores(self.model.score_last, items, seen, fallback=self._popularity)  # (B, N+1)
        k = min(k, self.model.config.n_items)
        top = scores.topk(k, dim=1)
        return top.values, top.indices

    def encode_histories(self, histories: Sequence[Sequence[str]]) -> list[list[int]]:
        """Raw-id histories -> index lists, unknown ids dropped."""
        return [self.item_map.encode(h) for h in histories]

    def recommend(
        self, histories: Sequence[Sequence[str]], k: int = 10, exclude_seen: bool = True
    ) -> list[list[tuple[str, float]]]:
        """Top-k (raw item id, score) per history, best first. Scores are model logits, or popularity
        shares for histories with no known item. Excluded items are never returned."""
        if k < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        if not histories:
            return []
        encoded = self.encode_histories(histories)
        width = min(max(len(s) for s in encoded), self.max_len)
        items = pad_left(encoded, width)  # newest max_len items, left-padded to the longest
        seen = pad_left(encoded) if exclude_seen and width < max(len(s) for s in encoded) else None
        values, indices = self.recommend_indices(items, k, exclude_seen, seen=seen)
        values, indices = values.cpu().tolist(), indices.cpu().tolist()
        raw = self.item_map.raw
        return [
            [(raw(i), s) for s, i in zip(row_s, row_i) if s != float("-inf")]
            for row_s, row_i in zip(values, indices)
        ]

    def recommend_ids(
        self, histories: Sequence[Sequence[str]], k: int = 10, exclude_seen: bool = True
    ) -> list[list[str]]:
        """`recommend` without the scores: the top-k raw item ids per history, best first."""
        return [[item for item, _ in row] for row in self.recommend(histories, k, exclude_seen)]
