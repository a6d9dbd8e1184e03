"""Pieces shared by the two generative attention kinds (`vgenatt`, `dgenatt`).

Reference: Liu, Kong, Luo, Ma, "Why Generate When You Can Transform? Unleashing Generative
Attention for Dynamic Recommendation", ACM MM 2025, arXiv 2508.02050. Only the abstract and the
overview figure are available; every choice below that the figure leaves open is marked *ours*.

- `PrefixSummary`: the global representation h_g = f_phi(M). *Ours*: a causal one — the mean of the
  layer input over valid positions <= t, then a small MLP — because training predicts the next item
  at every position at once and a whole-sequence summary would leak the targets.
- `masked_softmax`: logits -> rows that are distributions over the allowed keys (exact zeros elsewhere).
- `GenerativeAttention`: the part both kinds share — options parsing, q/k/v and output projections,
  f_phi, and the eval-time switch between `mean` (deterministic, the default) and `sample`.
"""

from __future__ import annotations

import torch
from torch import nn

from seqrec.model.attention.base import Attention, parse_options
from seqrec.model.config import ModelConfig

INFERENCE_MODES = ("mean", "sample")

def check_inference_mode(mode: str) -> None:
    if mode not in INFERENCE_MODES:
        raise ValueError(f"inference mode must be one of {INFERENCE_MODES}, got {mode!r}")


class PrefixSummary(nn.Module):
    """f_phi: (B, L, D) layer input -> (B, L, D) causal summary h_g; position t sees only <= t.

    *Ours*: causal mean pooling over valid positions (O(L), no attention of its own) followed by
    Linear -> GELU. Padded positions (left padding) get a zero mean, hence a constant h_g."""

    def __init__(self, d_model: int) -> None:
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(d_model, d_model), nn.GELU())

    def forward(self, x: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        w = valid.to(x.dtype).unsqueeze(-1)  # (B, L, 1)
        total = (x * w).cumsum(dim=1)  # (B, L, D) sum over valid positions <= t
        count = w.cumsum(dim=1).clamp(min=1.0)  # (B, L, 1)
        return self.mlp(total / count)  # (B, L, D)


def masked_softmax(logits: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """(B, H, L, L) logits, (B, 1, L, L) bool mask -> rows summing to 1 over the mask, 0 elsewhere.
    `causal_mask` gives padded query rows their own diagonal, so no row is all-masked (no NaN)."""
    return logits.masked_fill(~mask, float("-inf")).softmax(dim=-1)


def split_heads(t: torch.Tensor, n_heads: int) -> torch.Tensor:
    """(B, L, H*d) -> (B, H, L, d)."""
    B, L, D = t.shape
    return t.view(B, L, n_heads, D // n_heads).transpose(1, 2)


def merge_heads(t: torch.Tensor) -> torch.Tensor:
    """(B, H, L, d) -> (B, L, H*d)."""
    B, H, L, d = t.shape
    return t.transpose(1, 2).reshape(B, L, H * d)


class GenerativeAttention(Attention):
    """Base of `vgenatt` and `dgenatt`: subclasses set `kind` and `options_cls` (a frozen dataclass
    with an `inference` field) and build their generator on top of qkv / proj / summary."""

    kind: str
    options_cls: type

    def __init__(self, config: ModelConfig) -> None:
        super().__init__(config)
        self.options = parse_options(self.options_cls, config.attention_options, self.kind)
        self.inference = self.options.inference  # eval-time mode; training always samples
        self.n_heads = config.n_heads
        self.attn_dropout = config.dropout
        self.qkv = nn.Linear(config.d_model, 3 * config.d_model)
        self.proj = nn.Linear(config.d_model, config.d_model)
        self.summary = PrefixSummary(config.d_model)  # f_phi -> h_g

    def set_inference_mode(self, mode: str) -> None:
        """`mean`: same history -> same output; `sample`: fresh noise each call (a diversity knob)."""
        check_inference_mode(mode)
        self.inference = mode

    def stochastic(self) -> bool:
        return self.training or self.inference == "sample"
