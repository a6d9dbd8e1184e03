"""Leave-one-out evaluation with full ranking over the whole catalogue (no sampled negatives).

For each evaluated user the model scores every item from the last position of the history (the
newest max_len items). With `exclude_seen`, every item of the user's history gets -inf before
ranking, as BSARec/RecBole do; a target the user had already seen then counts as a miss, and the
result reports how many targets that was (`targets_in_history`).
"""

from __future__ import annotations

import logging
from typing import Protocol, Sequence

import torch

from seqrec.model.data import Split, pad_left
from seqrec.model.inference import ranking_scores
from seqrec.model.metrics import MetricAccumulator
from seqrec.model.sasrec import SASRec

__all__ = ["PopularityScorer", "ScoreFn", "evaluate_sequences", "evaluate_split", "user_metrics"]

log = logging.getLogger(__name__)


@torch.inference_mode()
def _accumulate(
    model: SASRec | ScoreFn,
    histories: Sequence[Sequence[int]],
    targets: Sequence[int],
    ks: Sequence[int],
    exclude_seen: bool,
    categories: Sequence[frozenset] | None,
    batch_size: int,
    device: torch.device | str | None,
) -> tuple[MetricAccumulator, list[int], int]:
    """Score every history; -> (the filled accumulator, the user order it was filled in, how many
    targets were in their user's history)."""
    if len(histories) != len(targets):
        raise ValueError(f"{len(histories)} histories but {len(targets)} targets")
    if isinstance(model, SASRec):
        device = torch.device(device) if device is not None else next(model.parameters()).device
        was_training = model.training
        model.eval()
        score_fn: ScoreFn = model.score_last
        n_items, max_len = model.config.n_items, model.config.max_len
    else:
        device = torch.device(device or "cpu")
        score_fn, n_items, max_len = model, model.n_items, model.max_len
    acc = MetricAccumulator(n_items, ks, categories)
    in_history = 0
    # Similar lengths together: less padding per batch; the metrics do not depend on the order.
    order = sorted(range(len(histories)), key=lambda u: len(histories[u]))
    for start in range(0, len(order), batch_size):
        rows = order[start:start + batch_size]
        hist = [histories[u] for u in rows]
        tgt = torch.tensor([targets[u] for u in rows], dtype=torch.long, device=device)
        items = pad_left(hist, min(max(len(h) for h in hist), max_len)).to(device)
        seen = pad_left(hist).to(device) if exclude_seen else None  # the whole history, not only the newest max_len
        if seen is not None:
            in_history += int((seen == tgt[:, None]).any(dim=1).sum())
        acc.update(ranking_scores(score_fn, items, seen), tgt)  # scores (B, N+1)
    if isinstance(model, SASRec):
        model.train(was_training)
    return acc, order, in_history


def evaluate_sequences(
    model: SASRec | ScoreFn,
    histories: Sequence[Sequence[int]],
    targets: Sequence[int],
    *,
    ks: Sequence[int] = (5, 10, 20),
    exclude_seen: bool = True,
    categories: Sequence[frozenset] | None = None,
    batch_size: int = 256,
    device: torch.device | str | None = None,
) -> dict[str, float]:
    """Metrics (see model.metrics) for next-item targets after index histories. `model` is a SASRec
    (scored from its last position) or any ScoreFn, e.g. `popularity_scorer`."""
    acc, _, in_history = _accumulate(model, histories, targets, ks, exclude_seen, categories, batch_size, device)
    out = acc.result()
    out["exclude_seen"] = float(exclude_seen)
    out["targets_in_history"] = float(in_history)
    return out


def user_metrics(
    model: SASRec | ScoreFn,
    histories: Sequence[Sequence[int]],
    targets: Sequence[int],
    *,
    k: int = 10,
    exclude_seen: bool = True,
    categories: Sequence[frozenset] | None = None,
    batch_size: int = 256,
    device: torch.device | str | None = None,
) -> dict[str, torch.Tensor]:
    """HR, NDCG, MRR (and CC with categories) at k of each user, one value per history in the order
    given: two models evaluated on the same users can be compared user by user
    (`model.metrics.paired_difference`)."""
    acc, order, _ = _accumulate(model, histories, targets, (k,), exclude_seen, categories, batch_size, device)
    in_input_order: dict[str, torch.Tensor] = {}
    for name, values in acc.user_metrics(k).items():
        in_input_order[name] = torch.empty_like(values)
        in_input_order[name][torch.tensor(order)] = values
    return in_input_order


class ScoreFn(Protocol):
    n_items: int
    max_len: int

    def __call__(self, items: torch.Tensor) -> torch.Tensor: ...  # (B, L) -> (B, n_items + 1)


class PopularityScorer:
    """The most-popular baseline: every history gets the items' training counts as scores."""

    def __init__(self, split: Split, max_len: int = 200) -> None:
        counts = torch.tensor(split.item_counts(), dtype=torch.float32)
        counts[0] = float("-inf")
        self.counts, self.n_items, self.max_len = counts, split.n_items, max_len

    def __call__(self, items: torch.Tensor) -> torch.Tensor:
        return self.counts.to(items.device).expand(items.shape[0], -1).clone()


def evaluate_split(model: SASRec, split: Split, which: str = "test", **kwargs) -> dict[str, float]:
    """`evaluate_sequences` on the split's validation or test users (see Split.eval_inputs)."""
    histories, targets = split.eval_inputs(which)
    if not histories:
        raise ValueError(f"no users with a {which} target (every user has fewer than 3 items)")
    return evaluate_sequences(model, histories, targets, **kwargs)
