"""Standard multi-head softmax(QK^T/sqrt(d))V attention (SASRec's), kept as the reference kind.

One option, a control for the generative kinds (issue 14): `logit_noise` adds N(0, sigma^2) to every
attention logit during training only. V-GenAtt's sampled z moves the logits by a comparable amount;
if this plain noise matches V-GenAtt, the gain comes from noise as a regulariser, not from generation.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from seqrec.model.attention import register_attention
from seqrec.model.attention.base import Attention, AttentionOutput, causal_mask, last_query_rows, parse_options
from seqrec.model.config import ModelConfig


@dataclass(frozen=True)
class SoftmaxOptions:
    logit_noise: float = 0.0  # std of the Gaussian noise on the logits in training; 0 = plain SASRec

    def __post_init__(self) -> None:
        if self.logit_noise < 0:
            raise ValueError(f"logit_noise must be >= 0, got {self.logit_noise}")


@register_attention("softmax")
class SoftmaxAttention(Attention):
    def __init__(self, config: ModelConfig) -> None:
        super().__init__(config)
        self.options = parse_options(SoftmaxOptions, config.attention_options, "softmax")
        self.n_heads = config.n_heads
        self.qkv = nn.Linear(config.d_model, 3 * config.d_model)
        self.proj = nn.Linear(config.d_model, config.d_model)
        self.attn_dropout = config.dropout

    def forward(self, x: torch.Tensor, valid: torch.Tensor, return_weights: bool = False,
                target: torch.Tensor | None = None, last_query: bool = False) -> AttentionOutput:
        B, L, D = x.shape
        q, k, v = self.qkv(x).split(D, dim=2)
        q, k, v = (t.view(B, L, self.n_heads, D // self.n_heads).transpose(1, 2) for t in (q, k, v))  # (B, H, L, d)
        q, mask = last_query_rows(q, causal_mask(valid), last_query)  # (B, H, Lq, d), (B, 1, Lq, L)
        weights = None
        if return_weights:
            # The readable path: the same numbers as the fused kernel, with the maps kept.
            logits = (q @ k.transpose(-2, -1)) / (q.shape[-1] ** 0.5)
            weights = logits.masked_fill(~mask, float("-inf")).softmax(dim=-1)  # (B, H, L, L)
            y = weights @ v
        else:
            drop = self.attn_dropout if self.training else 0.0
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=self._training_mask(mask, q), dropout_p=drop)
        y = y.transpose(1, 2).reshape(B, q.shape[2], D)
        return AttentionOutput(out=self.proj(y), weights=weights)

    def _training_mask(self, mask: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
        """The bool mask, or in training with logit_noise an additive float mask: -inf where masked,
        N(0, sigma^2) per (batch, head, query, key) elsewhere (SDPA adds it to the logits)."""
        if not (self.training and self.options.logit_noise > 0):
            return mask
        B, H, Lq, _ = q.shape
        noise = torch.randn(B, H, Lq, mask.shape[-1], device=q.device, dtype=q.dtype) * self.options.logit_noise
        return noise.masked_fill(~mask, float("-inf"))
