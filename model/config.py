"""The one model configuration. It travels inside every checkpoint (plain types only), so a
checkpoint rebuilds its exact model without any side file."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

# Block layouts: "sasrec" = pre-LN residual blocks (today's model); "ligr" = the same pre-LN blocks
# with a sigmoid gate on each residual update (LiGR, Borisyuk et al. 2025, as eSASRec uses it).
BLOCKS = ("sasrec", "ligr")
# Point-wise feed-forward: "relu" = SASRec's two layers; "swiglu" = Shazeer's gated SiLU unit.
FFNS = ("relu", "swiglu")


@dataclass(frozen=True)
class ModelConfig:
    n_items: int  # catalogue size; item indices are 1..n_items, index 0 is padding
    max_len: int = 200  # longest history the model reads (ml-1m users average 165 clicks)
    d_model: int = 64  # hidden size; SASRec's 50-64 is enough for catalogues of ~10^4 items
    n_heads: int = 2
    n_blocks: int = 2
    dropout: float = 0.2
    attention: str = "softmax"  # a name in model.attention's registry
    attention_options: dict[str, Any] = field(default_factory=dict)  # that kind's own knobs
    # The defaults are today's model: a checkpoint saved before these fields existed loads as it was.
    block: str = "sasrec"  # one of BLOCKS
    ffn: str = "relu"  # one of FFNS

    def __post_init__(self) -> None:
        if self.n_items < 1:
            raise ValueError(f"n_items must be >= 1, got {self.n_items}")
        if self.d_model % self.n_heads:
            raise ValueError(f"d_model ({self.d_model}) must be divisible by n_heads ({self.n_heads})")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")
        if self.block not in BLOCKS:
            raise ValueError(f"block must be one of {', '.join(BLOCKS)}, got {self.block!r}")
        if self.ffn not in FFNS:
            raise ValueError(f"ffn must be one of {', '.join(FFNS)}, got {self.ffn!r}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "ModelConfig":
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown model config fields: {', '.join(unknown)}")
        return cls(**data)
