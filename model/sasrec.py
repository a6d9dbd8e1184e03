"""SASRec backbone with a swappable attention module.

Kang & McAuley, "Self-Attentive Sequential Recommendation", ICDM 2018; trained by default with full
cross-entropy over the catalogue at every position ("SASRec+", Klenitskiy & Vasilev, "Turning Dross
Into Gold Loss: is BERT4Rec really better than SASRec?", RecSys 2023).

Layout (tensors in, tensors out; no I/O, no device moves):

    items (B, L) left-padded, 0 = padding
      -> item embedding * sqrt(D) + learned position embedding, dropout, padded rows zeroed
      -> n_blocks x [LayerNorm -> attention (model.attention registry) -> dropout -> residual
                     -> LayerNorm -> point-wise FFN -> residual], padded rows zeroed after each block
         (block "ligr": each residual update is multiplied by sigmoid(Linear(residual stream));
          ffn "swiglu": the FFN is W2(silu(W1 x) * W3 x) instead of W2 relu(W1 x))
      -> final LayerNorm, padded rows zeroed
      -> scores = hidden @ item_embedding.T (tied output)

Departures from the paper, all deliberate:
- Pre-LN blocks (normalise the input of each sub-layer) instead of the paper's post-LN; they train
  stably without warm-up. The paper's variant normalises only the query; our attention interface takes
  one input, so keys and values see the normalised input too.
- Positions count back from the end of the window: with left padding the newest item always sits at
  position `max_len`, whatever length the batch is padded to. A history padded to 50 or to 200 gives
  the same scores, which serving relies on (it pads each batch only to its longest history).
- The padding logit (index 0) is -inf in every score and loss.

Options beside the paper's block (ModelConfig.block / .ffn; the defaults are the paper's layout):
- "ligr": LiGR's gated residual (Borisyuk et al., "From Features to Transformers: Redefining Ranking
  for Scalable Impact", 2025), as eSASRec uses it (Tikhonov et al., RecSys 2025): x + sigmoid(G x) * f(LN x),
  the gate reading the un-normalised residual stream, one D x D gate per sub-layer.
- "swiglu": Shazeer, "GLU Variants Improve Transformer", 2020. Hidden size D as in SASRec's FFN (ours;
  eSASRec uses 4D): half again the FFN's weights, for a serving cost close to today's.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from seqrec.model.attention import build_attention
from seqrec.model.config import ModelConfig

__all__ = ["NEGATIVE_MIXES", "OBJECTIVES", "LossOutput", "SASRec", "cross_entropy"]

OBJECTIVES = ("ce", "bce")  # softmax cross-entropy (full or sampled), or SASRec's binary cross-entropy
# Where sampled softmax draws its negatives: the catalogue uniformly, the batch's own targets (so in
# proportion to their frequency), or half of each (mixed negative sampling, as eSASRec and gSASRec).
NEGATIVE_MIXES = ("uniform", "inbatch", "mixed")


def cross_entropy(logits: torch.Tensor, target: torch.Tensor, smoothing: float = 0.0) -> torch.Tensor:
    """Mean softmax cross-entropy of logits (M, C) against class indices (M,), with label smoothing as
    torch defines it — (1 - s) * NLL + s * mean over classes of -log p — except that classes whose
    logit is -inf (padding, masked accidental hits) are left out of the mean: torch's would be inf."""
    if smoothing == 0.0:
        return F.cross_entropy(logits, target)
    logp = F.log_softmax(logits, dim=-1)  # (M, C)
    nll = -logp.gather(1, target[:, None]).squeeze(1)  # (M,)
    allowed = torch.isfinite(logits)  # (M, C)
    uniform = -logp.masked_fill(~allowed, 0.0).sum(-1) / allowed.sum(-1)  # (M,)
    return ((1.0 - smoothing) * nll + smoothing * uniform).mean()


@dataclass
class LossOutput:
    total: torch.Tensor  # scalar: ce + aux, what the optimiser minimises
    ce: torch.Tensor  # scalar: next-item cross-entropy (full or sampled)
    aux: torch.Tensor  # scalar: sum of the attention kinds' auxiliary losses (0 for softmax)


class PointWiseFeedForward(nn.Module):
    """SASRec's two-layer position-wise FFN (hidden size D, as in the paper), with dropout."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.fc1 = nn.Linear(config.d_model, config.d_model)
        self.fc2 = nn.Linear(config.d_model, config.d_model)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, L, D) -> (B, L, D)
        return self.dropout(self.fc2(self.dropout(F.relu(self.fc1(x)))))


class SwiGLUFeedForward(nn.Module):
    """W2(silu(W1 x) * W3 x), hidden size D, with dropout where the ReLU FFN has it."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.fc1 = nn.Linear(config.d_model, config.d_model)  # gate branch
        self.fc3 = nn.Linear(config.d_model, config.d_model)  # value branch
        self.fc2 = nn.Linear(config.d_model, config.d_model)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, L, D) -> (B, L, D)
        return self.dropout(self.fc2(self.dropout(F.silu(self.fc1(x)) * self.fc3(x))))


FFN_CLASSES = {"relu": PointWiseFeedForward, "swiglu": SwiGLUFeedForward}


class Block(nn.Module):
    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.ln_attn = nn.LayerNorm(config.d_model)
        self.attn = build_attention(config)
        self.ln_ffn = nn.LayerNorm(config.d_model)
        self.ffn = FFN_CLASSES[config.ffn](config)
        self.dropout = nn.Dropout(config.dropout)
        # LiGR: one gate per residual update; None keeps the plain residual (and today's state dict).
        gated = config.block == "ligr"
        self.gate_attn = nn.Linear(config.d_model, config.d_model) if gated else None
        self.gate_ffn = nn.Linear(config.d_model, config.d_model) if gated else None

    @staticmethod
    def _residual(x: torch.Tensor, update: torch.Tensor, gate: nn.Linear | None) -> torch.Tensor:
        return x + (update if gate is None else torch.sigmoid(gate(x)) * update)

    def forward(self, x: torch.Tensor, valid: torch.Tensor, return_weights: bool = False,
                target: torch.Tensor | None = None, last_query: bool = False):
        """`last_query`: only the last position's output, (B, 1, D); keys and values still read all."""
        a = self.attn(self.ln_attn(x), valid, return_weights=return_weights, target=target, last_query=last_query)
        if last_query:
            x, valid = x[:, -1:], valid[:, -1:]
        x = self._residual(x, self.dropout(a.out), self.gate_attn)  # (B, L, D), or (B, 1, D)
        x = self._residual(x, self.ffn(self.ln_ffn(x)), self.gate_ffn)
        return x * valid[..., None], a


class SASRec(nn.Module):
    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        self.item_emb = nn.Embedding(config.n_items + 1, config.d_model, padding_idx=0)
        self.pos_emb = nn.Embedding(config.max_len + 1, config.d_model, padding_idx=0)
        self.emb_dropout = nn.Dropout(config.dropout)
        self.blocks = nn.ModuleList(Block(config) for _ in range(config.n_blocks))
        self.ln_final = nn.LayerNorm(config.d_model)
        self._init_weights()

    def _init_weights(self) -> None:
        # Embeddings as in SASRec.pytorch (xavier-normal scale); linear layers keep torch's default.
        for emb in (self.item_emb, self.pos_emb):
            nn.init.normal_(emb.weight, std=math.sqrt(2.0 / (emb.num_embeddings + emb.embedding_dim)))
            with torch.no_grad():
                emb.weight[0].zero_()

    # ---- trunk -------------------------------------------------------------------------------

    def _embed(self, items: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if items.dim() != 2:
            raise ValueError(f"items must be (batch, length), got shape {tuple(items.shape)}")
        B, L = items.shape
        if L > self.config.max_len:
            raise ValueError(f"sequence length {L} exceeds max_len {self.config.max_len}; truncate first")
        valid = items != 0  # (B, L)
        # Newest item at position max_len; padding gets position 0 (a zero vector).
        pos = torch.arange(self.config.max_len - L + 1, self.config.max_len + 1, device=items.device)
        pos = pos.expand(B, L) * valid  # (B, L)
        x = self.item_emb(items) * math.sqrt(self.config.d_model) + self.pos_emb(pos)  # (B, L, D)
        x = self.emb_dropout(x) * valid[..., None]
        return x, valid

    def _trunk(self, items: torch.Tensor, return_weights: bool, targets: torch.Tensor | None = None,
               last_only: bool = False):
        """`last_only`: the last block computes the last position alone (serving needs no other),
        and the hidden states come back as (B, 1, D)."""
        x, valid = self._embed(items)
        # A target-aware attention posterior reads each position's training target; only in training.
        target = self.item_emb(targets).detach() if targets is not None and self.training else None
        aux = x.new_zeros(())
        maps = []
        for i, block in enumerate(self.blocks):
            last_query = last_only and i == len(self.blocks) - 1
            x, a = block(x, valid, return_weights=return_weights, target=target, last_query=last_query)
            if a.aux_loss is not None:
                aux = aux + a.aux_loss
            maps.append(a.weights)
        if last_only:
            valid = valid[:, -1:]
        hidden = self.ln_final(x) * valid[..., None]  # (B, L, D), or (B, 1, D)
        return hidden, aux, maps

    def encode(self, items: torch.Tensor, targets: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """items (B, L) long, left-padded -> (hidden (B, L, D) with padded rows zero, aux loss scalar).
        `targets` (B, L), in training only, reach the attention kinds that have a target-aware posterior."""
        hidden, aux, _ = self._trunk(items, return_weights=False, targets=targets)
        return hidden, aux

    def attention_maps(self, items: torch.Tensor) -> list[torch.Tensor | None]:
        """One (B, H, L, L) map per block (None for a kind that has no maps); for tests and plots."""
        return self._trunk(items, return_weights=True)[2]

    # ---- heads -------------------------------------------------------------------------------

    def _logits(self, hidden: torch.Tensor) -> torch.Tensor:
        """(..., D) -> (..., n_items + 1) dot products with every item, padding logit -inf."""
        logits = hidden @ self.item_emb.weight.T
        logits[..., 0] = float("-inf")
        return logits

    def loss(self, items: torch.Tensor, targets: torch.Tensor, n_negatives: int = 0, objective: str = "ce",
             negative_mix: str = "uniform", logq: bool = False, label_smoothing: float = 0.0) -> LossOutput:
        """Next-item training loss at every non-padded target position.

        items, targets: (B, L) long, targets[b, t] is the item after items[b, t] (0 = no target).
        objective "ce", n_negatives = 0: full softmax cross-entropy over the whole catalogue (SASRec+).
        objective "ce", n_negatives > 0: sampled softmax against that many negatives, shared across the
        batch's positions, drawn as `negative_mix` says (`_negatives`), with accidental hits of the
        positive masked out. `logq` subtracts from each negative's logit the log of its expected count
        among the draws (`_negatives`), so that the negatives' sum estimates the full softmax's
        denominator without the popularity bias of in-batch sampling; the positive stays as it is.
        `label_smoothing` (ce only): `cross_entropy` over the catalogue, or over the positive and the
        unmasked negatives.
        objective "bce": the original SASRec loss, binary cross-entropy of the positive against one
        uniform negative drawn per position (an accidental hit contributes no negative term).
        """
        if items.shape != targets.shape:
            raise ValueError(f"items {tuple(items.shape)} and targets {tuple(targets.shape)} differ in shape")
        if objective not in OBJECTIVES:
            raise ValueError(f"objective must be one of {OBJECTIVES}, got {objective!r}")
        if negative_mix not in NEGATIVE_MIXES:
            raise ValueError(f"negative_mix must be one of {NEGATIVE_MIXES}, got {negative_mix!r}")
        hidden, aux = self.encode(items, targets)
        keep = targets != 0  # (B, L)
        h = hidden[keep]  # (M, D)
        y = targets[keep]  # (M,)
        if h.shape[0] == 0:
            ce = hidden.sum() * 0.0
        elif objective == "bce":
            neg = torch.randint(1, self.config.n_items + 1, y.shape, device=h.device)  # (M,) one per position
            pos_logit = (h * self.item_emb(y)).sum(-1).float()  # (M,)
            neg_logit = (h * self.item_emb(neg)).sum(-1).float()  # (M,)
            neg_loss = F.softplus(neg_logit) * (neg != y)  # -log(1 - sigmoid(s)) = softplus(s)
            ce = (F.softplus(-pos_logit) + neg_loss).mean()
        elif n_negatives <= 0:
            ce = cross_entropy(self._logits(h).float(), y, label_smoothing)
        else:
            neg, log_expected = self._negatives(y, n_negatives, negative_mix)  # (N,), (N,)
            pos_logit = (h * self.item_emb(y)).sum(-1, keepdim=True)  # (M, 1)
            neg_logit = h @ self.item_emb(neg).T  # (M, N)
            if logq:
                neg_logit = neg_logit - log_expected.to(neg_logit.dtype)
            neg_logit = neg_logit.masked_fill(neg[None, :] == y[:, None], float("-inf"))
            logits = torch.cat([pos_logit, neg_logit], dim=1).float()
            ce = cross_entropy(logits, torch.zeros_like(y), label_smoothing)
        return LossOutput(total=ce + aux, ce=ce, aux=aux)

    def _negatives(self, y: torch.Tensor, n: int, mix: str) -> tuple[torch.Tensor, torch.Tensor]:
        """n negatives for sampled softmax given the batch's targets y (M,): (items (n,), log of each
        one's expected count among the n draws (n,), the logQ term). Uniform draws come first (so a
        uniform-only batch draws exactly what it did before the other mixes existed), then in-batch
        draws: targets picked at random positions of the batch, an item with probability
        q = (its count in y) / M. Expected count of an item drawn by a sampler with probability q:
        n * q, whichever half drew it (each half's estimate of the denominator is weighted by its share
        of the draws, which puts the same n in both)."""
        n_inbatch = {"uniform": 0, "inbatch": n, "mixed": n // 2}[mix]
        n_items = self.config.n_items
        uniform = torch.randint(1, n_items + 1, (n - n_inbatch,), device=y.device)  # (n - n_inbatch,)
        picked = y[torch.randint(0, y.shape[0], (n_inbatch,), device=y.device)]  # (n_inbatch,)
        q_inbatch = torch.bincount(y, minlength=n_items + 1)[picked].float() / y.shape[0]
        q = torch.cat([torch.full(uniform.shape, 1.0 / n_items, device=y.device), q_inbatch])
        return torch.cat([uniform, picked]), torch.log(n * q)

    def score_last(self, items: torch.Tensor) -> torch.Tensor:
        """items (B, L) left-padded -> (B, n_items + 1) scores of the next item, from the last position
        only (column 0, padding, is -inf). An all-padding row scores every item 0.
        The last block computes the last position alone: the same scores as `encode` gives there
        (tests/model/test_sasrec.py), at about half the last block's cost."""
        hidden, _, _ = self._trunk(items, return_weights=False, last_only=True)
        return self._logits(hidden[:, -1, :])

    def set_training_progress(self, progress: float) -> None:
        """Forward training progress in [0, 1] (step / total steps) to every submodule that wants it
        (V-GenAtt anneals its KL weight with it)."""
        for module in self.modules():
            if module is not self and hasattr(module, "set_training_progress"):
                module.set_training_progress(progress)
