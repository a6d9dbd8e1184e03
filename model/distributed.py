"""Data-parallel training over processes with PyTorch's own tools: a torch.distributed process group
(gloo on CPU, NCCL on CUDA with one GPU per local rank), DistributedDataParallel for the gradient
all-reduce, and torch's elastic launcher for several processes on this machine.

model.train asks `current()` for its place in the group and goes through the `World` it gets: the
device, this rank's rows of each global batch, the DDP-wrapped loss, and what rank 0 decided. One
process (no group) is a World of size 1, on which every hook does nothing.

`run` is the way in:
    nproc > 1       launches nproc local ranks (torch.distributed.launcher: c10d rendezvous on
                    127.0.0.1, port 0 so that the store binds a free one) and returns rank 0's value;
    under torchrun  joins the group torchrun's variables describe (RANK, WORLD_SIZE, LOCAL_RANK,
                    MASTER_ADDR, MASTER_PORT); every rank runs the call, rank 0 gets its value back;
    otherwise       runs the call here.
This module is the one place that reads those variables (torchrun's contract, not a setting).
"""

from __future__ import annotations

import contextlib
import logging
import os
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

import torch
import torch.distributed as dist
from torch import nn
from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
from torch.distributed.launcher.api import LaunchConfig, elastic_launch
from torch.nn.parallel import DistributedDataParallel

from seqrec.model.errors import DistributedError
from seqrec.model.inference import default_device
from seqrec.model.sasrec import LossOutput, SASRec

__all__ = ["World", "current", "launch_size", "run", "under_torchrun"]

log = logging.getLogger(__name__)

T = TypeVar("T")
_TORCHRUN_VARS = ("RANK", "WORLD_SIZE", "LOCAL_RANK")


@dataclass(frozen=True)
class World:
    """This process's place among the training processes (rank 0 of 1 when alone)."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0  # the GPU index on this host under NCCL

    @property
    def main(self) -> bool:
        """Rank 0: the one that validates, logs and writes files."""
        return self.rank == 0

    def device(self, requested: str | None) -> torch.device:
        """`requested` (default: CUDA when available); in a group, CUDA's index is the local rank."""
        device = torch.device(requested) if requested else default_device()
        if self.size > 1 and device.type == "cuda":
            return torch.device("cuda", self.local_rank)
        return device

    def per_rank_batch(self, batch_size: int) -> int:
        """The global batch is `batch_size` rows, whatever the number of ranks (so one seed and one
        batch size give the same optimisation at any size); each rank takes batch_size / size."""
        if batch_size % self.size:
            raise ValueError(f"batch size {batch_size} does not split evenly over {self.size} processes")
        return batch_size // self.size

    def reseed(self, seed: int) -> None:
        """Ranks above 0 draw dropout masks and sampled negatives from a stream of their own: with
        rank 0's stream every rank would drop the same units of its different rows."""
        if self.rank:
            torch.manual_seed(seed + self.rank)

    def pad(self, order: torch.Tensor) -> torch.Tensor:
        """An epoch's order (the same on every rank, from the seed) with its first rows repeated up
        to a multiple of size, as DistributedSampler(drop_last=False) pads: then every global batch
        holds a multiple of size rows and every rank gets some."""
        extra = -order.shape[0] % self.size
        return torch.cat([order, order[:extra]]) if extra else order

    def shard(self, rows: torch.Tensor) -> torch.Tensor:
        """This rank's rows of one global batch: every size-th from its rank on (DistributedSampler's
        interleaving)."""
        return rows[self.rank::self.size] if self.size > 1 else rows

    def wrap(self, model: SASRec) -> Callable[..., LossOutput]:
        """model.loss, through DistributedDataParallel in a group (its backward all-reduces the
        gradients, averaged over ranks). The weights stay `model`'s: checkpoints save it as before."""
        if self.size == 1:
            return model.loss
        device = next(model.parameters()).device
        return DistributedDataParallel(_Loss(model), device_ids=[device.index] if device.type == "cuda" else None)

    def share(self, targets: torch.Tensor) -> torch.Tensor | float:
        """The factor on this rank's loss (a mean over its target positions, targets (B, L), 0 = none)
        that makes DDP's average over ranks the mean over the whole global batch's targets:
        n_rank * size / n_all. Ranks' rows hold different numbers of targets."""
        if self.size == 1:
            return 1.0
        mine = (targets != 0).sum()
        total = mine.clone()
        dist.all_reduce(total)
        return mine * self.size / total

    def mean(self, values: list[float]) -> list[float]:
        """The mean of each value over ranks (for the epoch's loss in the history)."""
        if self.size == 1:
            return values
        t = torch.tensor(values, dtype=torch.float64, device=_collective_device())
        dist.all_reduce(t)
        return (t / self.size).tolist()

    def from_main(self, value: float) -> float:
        """Rank 0's `value` on every rank: decisions that only rank 0 can make (its validation score,
        its clock) reach all ranks, so that they all keep the same books and stop at the same epoch."""
        if self.size == 1:
            return value
        t = torch.tensor([value], dtype=torch.float64, device=_collective_device())
        dist.broadcast(t, src=0)
        return float(t.item())


class _Loss(nn.Module):
    """DDP hooks a module's forward; SASRec's training call is `loss`."""

    def __init__(self, model: SASRec) -> None:
        super().__init__()
        self.model = model

    def forward(self, items: torch.Tensor, targets: torch.Tensor, **options: Any) -> LossOutput:
        return self.model.loss(items, targets, **options)


def _collective_device() -> torch.device:
    # NCCL moves CUDA tensors only; gloo CPU ones.
    return torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else torch.device("cpu")


def current() -> World:
    """This process's World: from the initialised process group, else alone."""
    if not (dist.is_available() and dist.is_initialized()):
        return World()
    return World(rank=dist.get_rank(), size=dist.get_world_size(), local_rank=int(os.environ.get("LOCAL_RANK", 0)))


def under_torchrun() -> bool:
    """Started by torchrun (or another launcher that sets its variables)."""
    return all(name in os.environ for name in _TORCHRUN_VARS)


def _uses_cuda(device: str | None) -> bool:
    return torch.device(device).type == "cuda" if device else torch.cuda.is_available()


@contextlib.contextmanager
def joined(device: str | None) -> Iterator[World]:
    """Inside: a member of the process group that the launcher's variables describe; NCCL when
    training on CUDA (this rank's GPU: its local rank), gloo on CPU."""
    cuda = _uses_cuda(device)
    if cuda:
        torch.cuda.set_device(int(os.environ["LOCAL_RANK"]))
    dist.init_process_group("nccl" if cuda else "gloo")  # env://: the launcher's rendezvous
    try:
        yield current()
    finally:
        dist.destroy_process_group()


def launch_size(nproc: int, device: str | None) -> int:
    """How many ranks `run(..., nproc=nproc, device=device)` trains on (torchrun's WORLD_SIZE under
    torchrun); ValueError for a launch that cannot work."""
    if nproc < 1:
        raise ValueError(f"nproc must be >= 1, got {nproc}")
    if under_torchrun():
        if nproc > 1:
            raise ValueError("under torchrun the processes are torchrun's (--nproc-per-node): leave nproc at 1")
        return int(os.environ["WORLD_SIZE"])
    if nproc > 1 and _uses_cuda(device) and nproc > torch.cuda.device_count():
        raise ValueError(f"{nproc} processes need {nproc} GPUs (one each); this machine has "
                         f"{torch.cuda.device_count()}")
    return nproc


def run(fn: Callable[..., T], *args: Any, nproc: int = 1, device: str | None = None, threads: int | None = None,
        **kwargs: Any) -> T | None:
    """fn(*args, **kwargs) on every rank (see the module docstring for where the ranks come from).
    Returns rank 0's value; None on the other ranks of an outside torchrun. `threads` is each local
    rank's torch CPU threads (default: this machine's cores shared out)."""
    launch_size(nproc, device)
    if under_torchrun():
        with joined(device) as world:
            result = fn(*args, **kwargs)
        return result if world.main else None
    if nproc == 1:
        return fn(*args, **kwargs)
    config = LaunchConfig(min_nodes=1, max_nodes=1, nproc_per_node=nproc, run_id=f"seqrec-{uuid.uuid4().hex[:12]}",
                          rdzv_backend="c10d", rdzv_endpoint="127.0.0.1:0", max_restarts=0, monitor_interval=0.1)
    threads = threads or max(1, (os.cpu_count() or 1) // nproc)  # nproc ranks with every core each would thrash
    level = logging.getLogger().getEffectiveLevel()
    try:
        results = elastic_launch(config, _rank_main)(fn, args, kwargs, device, threads, level)
    except ChildFailedError as exc:  # the launcher has logged every rank's traceback
        rank, failure = exc.get_first_failure()
        message = failure.message.get("message", "") if isinstance(failure.message, dict) else failure.message
        raise DistributedError(f"training process {rank} of {nproc} failed: {message}") from None
    return results[0]


def _rank_main(fn: Callable[..., T], args: tuple, kwargs: dict[str, Any], device: str | None, threads: int,
               level: int) -> T:
    """A launched rank: spawned, so the parent's thread count and logging setup did not travel."""
    torch.set_num_threads(threads)
    logging.basicConfig(level=level, format=f"%(asctime)s %(levelname)s rank {os.environ['RANK']} %(name)s: %(message)s")
    with joined(device):
        return fn(*args, **kwargs)
