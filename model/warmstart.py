"""Warm start: a new model that continues from a trained one on a grown catalogue.

Retraining starts from the serving model instead of from scratch, so it needs fewer epochs and
keeps what it knew. Items the old model never saw get embeddings at the centre of the known
ones plus a little noise (ours): a new item then scores like an average item until training
places it, instead of like a random direction."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace

import torch

from seqrec.model.data import ItemMap
from seqrec.model.sasrec import SASRec

NEW_ITEM_NOISE = 0.1  # times the spread of the known embeddings


def grow_model(old: SASRec, old_items: ItemMap, item_ids: Iterable[str], seed: int = 0) -> tuple[SASRec, ItemMap]:
    """Copy `old` into a model whose catalogue also holds the unseen ids in `item_ids`.

    Known items keep their index (ItemMap.grow appends), so every weight copies across; only the
    item embedding gets new rows."""
    item_map = ItemMap.from_list(old_items.to_list())
    item_map.grow(sorted(set(item_ids) - set(old_items.to_list())))
    model = SASRec(replace(old.config, n_items=len(item_map))).to(old.item_emb.weight.device)
    state = {k: v.clone() for k, v in old.state_dict().items()}
    known = state["item_emb.weight"]  # (n_old + 1, D), row 0 = padding
    n_new = len(item_map) - len(old_items)
    if n_new:
        generator = torch.Generator().manual_seed(seed)
        centre, spread = known[1:].mean(0), known[1:].std(0)
        noise = torch.randn(n_new, known.shape[1], generator=generator).to(known) * spread * NEW_ITEM_NOISE
        state["item_emb.weight"] = torch.cat([known, centre + noise])
    model.load_state_dict(state)
    return model, item_map
