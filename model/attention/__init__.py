"""Attention kinds by name. Each kind registers itself; `build_attention` makes one from the config."""

from __future__ import annotations

from typing import Callable

from seqrec.model.attention.base import Attention, AttentionOutput, causal_mask
from seqrec.model.config import ModelConfig

_REGISTRY: dict[str, type[Attention]] = {}


def register_attention(name: str) -> Callable[[type[Attention]], type[Attention]]:
    def wrap(cls: type[Attention]) -> type[Attention]:
        if name in _REGISTRY:
            raise ValueError(f"attention kind {name!r} registered twice")
        _REGISTRY[name] = cls
        return cls

    return wrap


def attention_kinds() -> list[str]:
    return sorted(_REGISTRY)


def build_attention(config: ModelConfig) -> Attention:
    try:
        cls = _REGISTRY[config.attention]
    except KeyError:
        raise ValueError(
            f"unknown attention kind {config.attention!r}; valid kinds: {', '.join(attention_kinds())}"
        ) from None
    return cls(config)


# Importing the kinds registers them.
from seqrec.model.attention import softmax  # noqa: E402,F401
from seqrec.model.attention import dgenatt, vgenatt  # noqa: E402,F401  (generative kinds, issue 4)

__all__ = ["Attention", "AttentionOutput", "attention_kinds", "build_attention", "causal_mask", "register_attention"]
