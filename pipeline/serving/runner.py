"""Runner: scores a batch of histories with the live model, off the event loop.

The live model sits behind one reference (`Runner.model`). Each batch reads that reference once,
so a whole batch is answered by one model and tagged with its version; `swap(new)` rebinds it
(one attribute store, atomic under the GIL) and the batch in flight finishes on the old one.
The forward pass runs in a worker thread (`asyncio.to_thread`) so Faust's event loop keeps
consuming, committing and heartbeating while torch works.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Protocol, Sequence

from seqrec.model.config import ModelConfig
from seqrec.pipeline.settings import ServingSettings


class RecommenderLike(Protocol):
    """What the runner needs from `model.inference.Recommender` (or an `InferenceProcess`)."""

    version: str

    @property
    def config(self) -> ModelConfig: ...

    def recommend(
        self, histories: Sequence[Sequence[str]], k: int = 10, exclude_seen: bool = True
    ) -> list[list[tuple[str, float]]]: ...


def load_recommender(path: Path | str, serving: ServingSettings) -> RecommenderLike:
    """Load a checkpoint for serving, in this process or in one of its own (`serving.inference`)."""
    if serving.inference == "process":
        from seqrec.pipeline.serving.inference_process import InferenceProcess

        return InferenceProcess(path, device=serving.device, torch_threads=serving.torch_threads)
    from seqrec.model.inference import Recommender

    return Recommender.from_checkpoint(path, device=serving.device)


async def retire(model: RecommenderLike) -> None:
    """Release a model that was swapped out, once its batch in flight is done."""
    from seqrec.pipeline.serving.inference_process import InferenceProcess

    if isinstance(model, InferenceProcess):
        await asyncio.to_thread(model.close)


class Runner:
    def __init__(self, model: RecommenderLike, *, top_k: int = 10, exclude_seen: bool = True) -> None:
        self.model = model
        self.top_k = top_k
        self.exclude_seen = exclude_seen

    @property
    def version(self) -> str:
        return self.model.version

    def swap(self, new: RecommenderLike) -> RecommenderLike:
        """Serve `new` from the next batch on; return the model it replaced."""
        old, self.model = self.model, new
        return old

    async def score(
        self, histories: Sequence[Sequence[str]], k: int | None = None
    ) -> tuple[str, list[list[tuple[str, float]]]]:
        """(model version, top-k per history, k = top_k unless given) for one batch, computed in a
        worker thread."""
        model = self.model  # read once: the batch is answered by one model
        results = await asyncio.to_thread(model.recommend, histories, k or self.top_k, self.exclude_seen)
        if len(results) != len(histories):
            raise RuntimeError(f"model answered {len(results)} of {len(histories)} histories")
        return model.version, results


__all__ = ["RecommenderLike", "Runner", "load_recommender", "retire"]
