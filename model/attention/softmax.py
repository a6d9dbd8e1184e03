"""Standard multi-head softmax(QK^T/sqrt(d))V attention (SASRec's), kept as the reference kind."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from model.attention import register_attention
from model.attention.base import Attention, AttentionOutput, causal_mask
from model.config import ModelConfig


@register_attention("softmax")
class SoftmaxAttention(Attention):
    def __init__(self, config: ModelConfig) -> None:
        super().__init__(config)
        self.n_heads = config.n_heads
        self.qkv = nn.Linear(config.d_model, 3 * config.d_model)
        self.proj = nn.Linear(config.d_model, config.d_model)
        self.attn_dropout = config.dropout

    def forward(self, x: torch.Tensor, valid: torch.Tensor, return_weights: bool = False) -> AttentionOutput:
        B, L, D = x.shape
        q, k, v = self.qkv(x).split(D, dim=2)
        q, k, v = (t.view(B, L, self.n_heads, D // self.n_heads).transpose(1, 2) for t in (q, k, v))  # (B, H, L, d)
        mask = causal_mask(valid)  # (B, 1, L, L)
        weights = None
        if return_weights:
            # The readable path: the same numbers as the fused kernel, with the maps kept.
            logits = (q @ k.transpose(-2, -1)) / (q.shape[-1] ** 0.5)
            weights = logits.masked_fill(~mask, float("-inf")).softmax(dim=-1)  # (B, H, L, L)
            y = weights @ v
        else:
            drop = self.attn_dropout if self.training else 0.0
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=drop)
        y = y.transpose(1, 2).reshape(B, L, D)
        return AttentionOutput(out=self.proj(y), weights=weights)
