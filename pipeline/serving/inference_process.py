"""The model in a process of its own, so that the forward never waits for the event loop's GIL.

In a thread beside Faust's event loop, an eager forward crosses from Python into torch about 60
times, and each time it takes the GIL back it can wait a whole switch interval while the loop runs
Python (`benchmarks/gil_contention.py`: 3.7 ms quiet, 292 ms beside a busy thread). Here the
worker's thread pickles a batch of raw-id histories into a pipe and blocks on the answer with the
GIL released; the child, a plain `Recommender` with an interpreter of its own, scores it. One
batch at a time, in order (a lock), as the runner asks for them.

The child ignores SIGINT and SIGTERM (the worker's graceful shutdown needs it until the last
batch) and exits when its pipe closes, which also happens when the worker is killed; at the
worker's normal exit, an atexit hook closes every child still open (multiprocessing's own hook
would otherwise wait for ever on a daemon that ignores its SIGTERM). If the child dies, the next
call starts a new one on the same checkpoint and retries once.
"""

from __future__ import annotations

import atexit
import logging
import multiprocessing
import multiprocessing.util  # registers multiprocessing's exit hook before ours (below)
import signal
import threading
import weakref
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, Sequence

from seqrec.model.config import ModelConfig
from seqrec.model.errors import CheckpointError

log = logging.getLogger(__name__)

START_TIMEOUT_S = 120.0  # importing torch and loading a checkpoint, on a loaded machine


_open: weakref.WeakSet[InferenceProcess] = weakref.WeakSet()


@atexit.register  # registered after multiprocessing's hook, so it runs first
def _close_all() -> None:
    for process in list(_open):
        process.close()


def _serve(conn: Connection, path: str, device: str | None, torch_threads: int | None) -> None:
    """The child: load the checkpoint, say ready (or why not), then answer until the pipe closes."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    import torch

    from seqrec.model.inference import Recommender

    if torch_threads:
        torch.set_num_threads(torch_threads)
    try:
        recommender = Recommender.from_checkpoint(path, device=device)
    except Exception as exc:  # every reason goes back to the parent, which raises it there
        conn.send(("error", f"{type(exc).__name__}: {exc}"))
        return
    conn.send(("ready", recommender.version, recommender.config))
    while True:
        try:
            request = conn.recv()
        except EOFError:  # the worker closed the pipe or died
            return
        if request is None:
            return
        histories, k, exclude_seen = request
        try:
            conn.send(("ok", recommender.recommend(histories, k, exclude_seen)))
        except Exception as exc:
            conn.send(("error", f"{type(exc).__name__}: {exc}"))


class InferenceProcess:
    """A `RecommenderLike` whose model lives in a child process (see the module's docstring)."""

    def __init__(self, path: Path | str, device: str | None = None, torch_threads: int | None = None) -> None:
        self.path = str(path)
        self.device = device
        self.torch_threads = torch_threads
        self._lock = threading.Lock()
        self._closed = False
        self._start()
        _open.add(self)

    def _start(self) -> None:
        context = multiprocessing.get_context("spawn")  # no fork of a process with threads and torch
        ours, theirs = context.Pipe()
        process = context.Process(target=_serve, args=(theirs, self.path, self.device, self.torch_threads),
                                  name="seqrec-inference", daemon=True)
        process.start()
        theirs.close()  # the child holds it now: our recv sees EOF when the child dies
        if not ours.poll(START_TIMEOUT_S):
            process.kill()
            raise CheckpointError(f"the inference process did not load {self.path} in {START_TIMEOUT_S:.0f} s")
        try:
            reply = ours.recv()
        except EOFError:
            process.join(5)
            reply = ("error", f"the inference process exited with code {process.exitcode}")
        if reply[0] != "ready":
            process.join(5)
            raise CheckpointError(reply[1])
        _, self.version, config = reply
        self.config: ModelConfig = config
        self._conn, self._process = ours, process
        log.info("inference process %d serves %s", process.pid, self.version)

    @property
    def pid(self) -> int | None:
        return self._process.pid

    def recommend(
        self, histories: Sequence[Sequence[str]], k: int = 10, exclude_seen: bool = True
    ) -> list[list[tuple[str, float]]]:
        """What `Recommender.recommend` answers, computed in the child. Blocks the calling thread."""
        request = ([list(h) for h in histories], k, exclude_seen)
        with self._lock:
            if self._closed:
                raise RuntimeError("the inference process was closed")
            try:
                reply = self._ask(request)
            except (EOFError, OSError):
                log.error("inference process %s died (exit code %s); starting a new one",
                          self._process.pid, self._process.exitcode)
                self._conn.close()
                self._start()
                reply = self._ask(request)
        if reply[0] != "ok":
            raise RuntimeError(f"inference failed in the inference process: {reply[1]}")
        return reply[1]

    def _ask(self, request: Any) -> Any:
        self._conn.send(request)
        return self._conn.recv()

    def close(self) -> None:
        """Let the batch in flight finish, then stop the child."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            try:
                self._conn.send(None)
            except OSError:
                pass
            self._conn.close()
        self._process.join(10)
        if self._process.is_alive():
            self._process.kill()


__all__ = ["InferenceProcess"]
