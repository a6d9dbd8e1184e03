"""Hot-swap: a running worker follows the model store's serving version without pausing.

Every `poll_s` the worker reads the store's `LATEST` pointer (a few bytes, on a shared volume
or an object store). When it names a version other than the one serving, the new checkpoint is loaded **in a
thread** (the event loop keeps serving), validated and warmed up, and only then swapped into
the runner, which takes effect between two micro-batches. Anything wrong (unreadable file,
another architecture, a smoke inference that fails)
refuses that version with a logged reason; the old model keeps serving and the refused version
is not retried until the pointer moves again. A store that cannot be reached (or refuses the
credentials) is one logged line per failed look, and the looks back off exponentially, up to
MAX_POLL_BACKOFF_S, until one succeeds; the old model keeps serving all along.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from seqrec.model.errors import CheckpointError
from seqrec.model.inference import Recommender
from seqrec.pipeline.serving.telemetry import Metrics
from seqrec.pipeline.lifecycle.model_store import ModelStore, incompatibility
from seqrec.pipeline.serving.runner import RecommenderLike, Runner, load_recommender, retire
from seqrec.pipeline.settings import ServingSettings, Settings
from seqrec.pipeline.storage.location import StorageError, redact

log = logging.getLogger(__name__)

MAX_POLL_BACKOFF_S = 60.0  # an unreachable store is still looked at once a minute

def check_compatible(old: RecommenderLike, new: RecommenderLike) -> None:
    """Raise CheckpointError when `new` cannot replace `old` in a running worker."""
    reason = incompatibility(old.config.to_dict(), new.config.to_dict())
    if reason is not None:
        raise CheckpointError(f"incompatible: {reason}")


def smoke_test(recommender: Recommender, k: int) -> None:
    """One batched inference on real catalogue items plus an empty history: answers must be
    non-empty, finite and of the right count. Also warms up the kernels before serving."""
    known = recommender.item_map.to_list()
    histories = [known[:3], known[-5:], []]
    answers = recommender.recommend(histories, k=k)
    if len(answers) != len(histories) or not all(answers):
        raise CheckpointError("smoke inference returned empty answers")
    if not all(math.isfinite(score) for row in answers for _, score in row):
        raise CheckpointError("smoke inference returned non-finite scores")


class HotSwapper:
    def __init__(
        self,
        runner: Runner,
        store: ModelStore,
        *,
        serving: ServingSettings = ServingSettings(),
        on_swap: Callable[[str], None] | None = None,
        on_refuse: Callable[[str, str], None] | None = None,
    ) -> None:
        self.runner = runner
        self.store = store
        self.serving = serving
        self.on_swap = on_swap
        self.on_refuse = on_refuse
        self.refused: dict[str, str] = {}  # version -> reason
        self.failures = 0  # looks at the store that failed in a row
        self._next_look = 0.0  # time.monotonic() before which a poll does not look (backoff)

    def load_and_validate(self, version: str) -> RecommenderLike:
        """Blocking: load, check against the serving model, smoke-test, then load it where it will
        serve (`serving.inference`). Runs in a thread."""
        path = self.store.checkpoint_path(version)
        new = Recommender.from_checkpoint(path, device=self.serving.device)
        if new.version != version:
            raise CheckpointError(f"file of version {version} holds version {new.version}")
        check_compatible(self.runner.model, new)
        smoke_test(new, self.runner.top_k)
        return new if self.serving.inference == "thread" else load_recommender(path, self.serving)

    async def check(self) -> str | None:
        """Swap to the store's serving version if it changed; returns the version swapped in."""
        if time.monotonic() < self._next_look:
            return None
        try:
            swapped = await self._follow()
        except StorageError as exc:  # the store, not the version: look again later
            self.failures += 1
            wait = min(self.serving.model_poll_s * 2 ** self.failures, MAX_POLL_BACKOFF_S)
            self._next_look = time.monotonic() + wait
            log.warning("%s; still serving %s, next look in %.1f s", exc, self.runner.version, wait)
            return None
        self.failures, self._next_look = 0, 0.0
        return swapped

    async def _follow(self) -> str | None:
        latest = await asyncio.to_thread(self.store.latest)
        if latest is None or latest == self.runner.version or latest in self.refused:
            return None
        try:
            new = await asyncio.to_thread(self.load_and_validate, latest)
        except (CheckpointError, OSError, RuntimeError, ValueError) as exc:
            self.refused[latest] = str(exc)
            log.error("refused model version %s: %s; still serving %s", latest, exc, self.runner.version)
            if self.on_refuse:
                self.on_refuse(latest, str(exc))
            return None
        old = self.runner.swap(new)
        log.info("hot-swapped model %s -> %s", old.version, new.version)
        if self.on_swap:
            self.on_swap(new.version)
        await retire(old)
        return new.version


def follow_model_store(app: Any, settings: Settings, runner: Runner, metrics: Metrics) -> HotSwapper:
    """Give every worker a timer that follows `settings.serving.model_store` (not leader-only:
    each worker serves its own partitions and must swap itself)."""
    def swapped(version: str) -> None:
        metrics.model_swaps.labels("swapped").inc()
        metrics.set_model_version(version)

    swapper = HotSwapper(runner, ModelStore(settings.serving.model_store), serving=settings.serving,
                         on_swap=swapped, on_refuse=lambda version, reason: metrics.model_swaps.labels("refused").inc())

    @app.timer(settings.serving.model_poll_s, name="follow_model_store")
    async def poll_model_store() -> None:
        await swapper.check()

    return swapper


def serving_checkpoint(settings: Settings) -> Path:
    """The checkpoint a worker starts with: --checkpoint, else the store's serving version."""
    if settings.serving.checkpoint is not None:
        return settings.serving.checkpoint
    if settings.serving.model_store is not None:
        store = ModelStore(settings.serving.model_store)
        latest = store.latest()
        if latest is None:
            raise CheckpointError(f"the model store {redact(store.url)} has no serving version yet "
                                  "(seqrec models publish)")
        return store.checkpoint_path(latest)
    raise CheckpointError("no model: pass --checkpoint (SEQREC_SERVING__CHECKPOINT) or set SEQREC_SERVING__MODEL_STORE")
