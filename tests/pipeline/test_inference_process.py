"""The model in a process of its own (`serving.inference=process`): the same answers as in the
worker's process, a clear refusal of a bad checkpoint, a new child when one dies, none left behind."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from seqrec.model.checkpoint import load_checkpoint, save_checkpoint
from seqrec.model.errors import CheckpointError
from seqrec.model.inference import Recommender
from seqrec.pipeline.lifecycle.hotswap import HotSwapper
from seqrec.pipeline.lifecycle.model_store import ModelStore
from seqrec.pipeline.serving.inference_process import InferenceProcess
from seqrec.pipeline.serving.runner import Runner, load_recommender
from seqrec.pipeline.settings import ServingSettings

HISTORIES = [["1", "2", "3"], ["50"], [], ["no-such-item"], [str(i) for i in range(1, 40)]]


@pytest.fixture(scope="module")
def child(tiny_checkpoint: Path):
    process = InferenceProcess(tiny_checkpoint, device="cpu", torch_threads=1)
    yield process
    process.close()


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie still answers kill(0): it is gone when it is no longer running.
    return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z" if Path(f"/proc/{pid}").exists() else False


def wait_gone(pid: int, timeout_s: float = 15) -> bool:
    deadline = time.monotonic() + timeout_s
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    return not alive(pid)


def test_answers_what_the_model_answers_in_this_process(child: InferenceProcess, tiny_checkpoint: Path) -> None:
    local = Recommender.from_checkpoint(tiny_checkpoint, device="cpu")
    assert child.version == local.version
    assert child.config == local.config
    for k, exclude_seen in [(10, True), (3, False)]:
        assert child.recommend(HISTORIES, k, exclude_seen) == local.recommend(HISTORIES, k, exclude_seen)
    assert child.recommend([]) == []
    assert child.pid != os.getpid()


def test_a_bad_checkpoint_is_refused_with_the_reason(tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"this is no checkpoint")
    with pytest.raises(CheckpointError, match="not a seqrec checkpoint"):
        InferenceProcess(garbage, device="cpu")
    with pytest.raises(CheckpointError, match="not found"):
        InferenceProcess(tmp_path / "missing.pt", device="cpu")


def test_a_failed_batch_raises_and_the_child_keeps_serving(child: InferenceProcess) -> None:
    with pytest.raises(RuntimeError, match="k must be >= 1"):
        child.recommend(HISTORIES, k=0)
    assert len(child.recommend(HISTORIES)) == len(HISTORIES)


def test_a_dead_child_is_replaced_and_the_batch_still_answered(tiny_checkpoint: Path) -> None:
    process = InferenceProcess(tiny_checkpoint, device="cpu", torch_threads=1)
    try:
        expected = process.recommend(HISTORIES)
        first = process.pid
        os.kill(first, signal.SIGKILL)
        assert wait_gone(first)
        assert process.recommend(HISTORIES) == expected
        assert process.pid != first
    finally:
        process.close()
    assert wait_gone(process.pid)
    with pytest.raises(RuntimeError, match="closed"):
        process.recommend(HISTORIES)


def test_the_child_outlives_neither_sigterm_of_the_group_nor_a_killed_worker(tiny_checkpoint: Path) -> None:
    """SIGTERM to the worker's process group must not stop the child before the worker's last
    batch; kill -9 of the worker must not leave the child running."""
    script = (
        "import sys, time\n"
        "from seqrec.pipeline.serving.inference_process import InferenceProcess\n"
        f"p = InferenceProcess({str(tiny_checkpoint)!r}, device='cpu', torch_threads=1)\n"
        "print(p.pid, flush=True)\n"
        "time.sleep(600)\n"
    )
    worker = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True,
                              start_new_session=True)
    try:
        child_pid = int(worker.stdout.readline())
        os.kill(child_pid, signal.SIGTERM)
        time.sleep(0.5)
        assert alive(child_pid), "the child must ignore SIGTERM (the worker shuts it down itself)"
        worker.kill()
        worker.wait(10)
        assert wait_gone(child_pid), "the child outlived the killed worker"
    finally:
        worker.kill()


def test_a_worker_that_exits_normally_stops_its_child_and_does_not_hang(tiny_checkpoint: Path) -> None:
    script = (
        "from seqrec.pipeline.serving.inference_process import InferenceProcess\n"
        f"p = InferenceProcess({str(tiny_checkpoint)!r}, device='cpu', torch_threads=1)\n"
        "print(p.pid, flush=True)\n"
    )
    worker = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert worker.returncode == 0, worker.stderr
    assert wait_gone(int(worker.stdout))


def retrained(checkpoint: Path, out: Path) -> Path:
    """The same architecture and catalogue with other weights: a new version."""
    loaded = load_checkpoint(checkpoint)
    with torch.no_grad():
        for parameter in loaded.model.parameters():
            parameter.add_(0.01)
    save_checkpoint(out, loaded.model, loaded.item_map, data_fingerprint="retrained", metrics={},
                    item_popularity=loaded.item_popularity)
    return out


def test_hot_swap_starts_the_new_child_and_stops_the_old_one(tiny_checkpoint: Path, tmp_path: Path) -> None:
    serving = ServingSettings(inference="process", device="cpu", torch_threads=1)
    store = ModelStore(tmp_path / "store")
    v1 = store.publish(tiny_checkpoint)
    runner = Runner(load_recommender(store.checkpoint_path(v1), serving), top_k=5)
    old = runner.model
    assert isinstance(old, InferenceProcess)
    swapper = HotSwapper(runner, store, serving=serving)
    v2 = store.publish(retrained(tiny_checkpoint, tmp_path / "v2.pt"))
    try:
        assert asyncio.run(swapper.check()) == v2
        assert isinstance(runner.model, InferenceProcess) and runner.model.pid != old.pid
        assert asyncio.run(runner.score([["1", "2"]]))[0] == v2
        assert wait_gone(old.pid), "the swapped-out child kept running"
    finally:
        for model in (old, runner.model):
            model.close()
