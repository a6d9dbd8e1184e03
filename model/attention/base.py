"""The contract every attention kind fulfils, so the backbone can swap them by name."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, TypeVar

import torch
from torch import nn

from seqrec.model.config import ModelConfig


@dataclass
class AttentionOutput:
    out: torch.Tensor  # (B, L, D) attended values, before the block's residual
    aux_loss: torch.Tensor | None = None  # scalar extra training loss (KL, denoising), already weighted
    weights: torch.Tensor | None = None  # (B, H, L, L) attention maps, only when asked for


class Attention(nn.Module):
    """Base class. Subclasses take the config alone and implement `forward`.

    forward(x, valid, return_weights=False, target=None, last_query=False):
        x:      (B, L, D) layer input (already layer-normed by the block)
        valid:  (B, L) bool, True where the position holds an item (sequences are left-padded)
        target: (B, L, D) embedding of each position's training target (the item after it), given by
                the backbone in training only; a kind with a target-aware posterior reads it, the
                others ignore it. Evaluation and serving never pass it.
        last_query: attend for the last position's query only (keys and values stay every position):
                `out` is then (B, 1, D). Scoring the next item needs nothing else from the last block.
    The causal mask is implied: position t may attend to positions <= t only, and never to padding.
    """

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config

    def forward(self, x: torch.Tensor, valid: torch.Tensor, return_weights: bool = False,
                target: torch.Tensor | None = None, last_query: bool = False) -> AttentionOutput:
        raise NotImplementedError


OptionsT = TypeVar("OptionsT")


def parse_options(options_cls: type[OptionsT], raw: dict[str, Any], kind: str) -> OptionsT:
    """Build `options_cls` from the config's attention_options, refusing keys it does not know."""
    valid = sorted(f.name for f in fields(options_cls))  # type: ignore[arg-type]
    unknown = sorted(set(raw) - set(valid))
    if unknown:
        raise ValueError(
            f"unknown attention option(s) for {kind!r}: {', '.join(unknown)}; valid options: {', '.join(valid)}"
        )
    return options_cls(**raw)


def last_query_rows(q: torch.Tensor, mask: torch.Tensor, last_query: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """q (B, H, L, d) and mask (B, 1, L, L), cut to the last query row when `last_query`."""
    return (q[:, :, -1:], mask[:, :, -1:]) if last_query else (q, mask)


def causal_mask(valid: torch.Tensor) -> torch.Tensor:
    """(B, L) validity -> (B, 1, L, L) bool mask, True where query t may attend to key s.

    A padded query row gets its own diagonal so that softmax never sees an all-masked row (NaN);
    the backbone zeroes padded outputs anyway."""
    L = valid.shape[1]
    tri = torch.ones(L, L, dtype=torch.bool, device=valid.device).tril()
    allowed = tri & valid[:, None, :]  # (B, L, L)
    allowed = allowed | torch.eye(L, dtype=torch.bool, device=valid.device)
    return allowed[:, None, :, :]
