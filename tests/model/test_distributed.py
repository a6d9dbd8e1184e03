"""Data-parallel training in real processes (torch's elastic launcher, gloo on CPU): two processes
take the same optimisation steps as one on the same global batch, reach the same quality, and
only rank 0 writes the run folder."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from seqrec.model.checkpoint import load_checkpoint
from seqrec.model.config import ModelConfig
from seqrec.model.data import SequenceDataset, leave_one_out, pad_left, synthetic_dataset
from seqrec.model.distributed import World, run
from seqrec.model.train import TrainConfig, TrainResult, train

RUN_FILES = {"best.pt", "last.pt", "history.jsonl", "metrics.json"}


@pytest.fixture(scope="module")
def dataset():
    # 200 users, 200 training windows: an even count, so the epoch's order needs no padding for
    # 2 ranks and the two runs see exactly the same rows.
    return synthetic_dataset(200, 60, n_clusters=6, seed=1)


def model_config(dropout: float) -> ModelConfig:
    return ModelConfig(n_items=1, max_len=20, d_model=32, n_heads=2, n_blocks=1, dropout=dropout)


def train_config(**kw) -> TrainConfig:
    base = dict(batch_size=32, lr=5e-3, patience=3, progress=False, device="cpu", seed=0)
    return TrainConfig(**{**base, **kw})


# The two comparisons: without dropout, 2 epochs (the only randomness is then the epoch's order,
# the same on every rank); with dropout, up to 10 epochs with early stopping.
EXACT = (model_config(dropout=0.0), train_config(epochs=2))
REALISTIC = (model_config(dropout=0.2), train_config(epochs=10))


def _train_both(dataset: SequenceDataset, out: Path) -> tuple[TrainResult, TrainResult]:
    """Both trainings in one launch of 2 ranks: each launch pays for the processes' start and
    DDP's first construction (it imports torch._dynamo), 5-10 s on a busy 2-core machine."""
    return (train(dataset, *EXACT, out / "exact"), train(dataset, *REALISTIC, out / "realistic"))


@pytest.fixture(scope="module")
def runs(dataset, tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[TrainResult, TrainResult]]:
    """{"exact" | "realistic": (1 process, 2 processes)}."""
    one, two = tmp_path_factory.mktemp("one"), tmp_path_factory.mktemp("two")
    # Tiny tensors on a shared machine: one thread for each rank and for the run here.
    exact, realistic = run(_train_both, dataset, two, nproc=2, threads=1)
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return {"exact": (train(dataset, *EXACT, one / "exact"), exact),
                "realistic": (train(dataset, *REALISTIC, one / "realistic"), realistic)}
    finally:
        torch.set_num_threads(before)


def test_two_processes_take_the_same_steps_as_one(dataset, runs) -> None:
    # Without dropout DDP's average of the ranks' token-weighted losses is the global batch's mean
    # loss: two processes must take one process's steps, down to float rounding. 2 epochs of 7
    # steps, the last step of each with 8 rows (4 per rank).
    one, two = runs["exact"]
    # Compared as the scores they give, not weight by weight: the attention's key bias has a true
    # gradient of 0 (softmax ignores a shift of every key's logit), so Adam's first step, about
    # lr * sign(g), moves it by rounding noise; it changes no score.
    split = leave_one_out(dataset, load_checkpoint(one.best_path).item_map)
    histories, _ = split.eval_inputs("valid")
    items = pad_left(histories, 20)
    with torch.no_grad():
        scores_one = load_checkpoint(one.best_path).model.eval().score_last(items)[:, 1:]
        scores_two = load_checkpoint(two.best_path).model.eval().score_last(items)[:, 1:]
    assert torch.allclose(scores_two, scores_one, rtol=0, atol=1e-4), (scores_two - scores_one).abs().max()
    assert two.valid["NDCG@10"] == pytest.approx(one.valid["NDCG@10"], abs=1e-3)
    # Both best.pt are the 2nd epoch's: the scores compared are of the same step.
    assert (two.best_epoch, two.epochs_run) == (one.best_epoch, one.epochs_run) == (2, 2)


def test_two_processes_reach_one_process_quality_and_only_rank_0_writes(runs) -> None:
    # With dropout each rank draws its own masks, so the runs differ; the same seed and global
    # batch must still give the same validation NDCG@10 within run-to-run noise. Noise, measured on
    # this data and config (seeds 0-4): 1 process 0.3278 +- 0.0056, 2 processes 0.3291 +- 0.0046 (sd
    # over seeds), paired differences -0.0048..+0.0010. The difference of two runs then has an sd of
    # about 0.0075: 0.02 is under 3 sd, and a run that learns nothing or much less (popularity
    # scores about 0.13 here) is far outside it.
    one, two = runs["realistic"]
    assert two.valid["NDCG@10"] == pytest.approx(one.valid["NDCG@10"], abs=0.02)

    # Every rank stopped at the same epoch (a rank that stopped alone would leave the other in a
    # collective, and the launch would fail); rank 0 alone wrote: one line per epoch, not two.
    assert {p.name for p in two.out_dir.iterdir()} == RUN_FILES
    history = (two.out_dir / "history.jsonl").read_text().splitlines()
    assert len(history) == two.epochs_run and all("valid_NDCG@10" in json.loads(line) for line in history)
    assert load_checkpoint(two.best_path).metrics["epochs_run"] == two.epochs_run


def test_world_shards_each_global_batch_like_distributed_sampler() -> None:
    order = torch.arange(7)
    padded = World(rank=1, size=2).pad(order)
    assert padded.tolist() == [0, 1, 2, 3, 4, 5, 6, 0]  # padded with its own first rows
    rank0, rank1 = World(rank=0, size=2), World(rank=1, size=2)
    assert rank0.shard(padded[:4]).tolist() == [0, 2] and rank1.shard(padded[:4]).tolist() == [1, 3]
    assert World(size=2).per_rank_batch(32) == 16
    with pytest.raises(ValueError, match="does not split evenly"):
        World(size=3).per_rank_batch(32)


def test_a_failed_rank_is_one_error_naming_it(tmp_path: Path) -> None:
    from seqrec.model.errors import DistributedError

    too_short = SequenceDataset(name="tiny", users=["u1"], sequences=[["a", "b"]])
    with pytest.raises(DistributedError, match="training process . of 2 failed: DataError: .*fewer than 3 items"):
        run(train, too_short, model_config(0.0), train_config(epochs=1), tmp_path, nproc=2, threads=1)


@pytest.mark.parametrize("args, message", [
    (["--nproc", "0"], "Invalid value for '--nproc': 0 is not in the range x>=1."),
    (["--nproc", "3", "--batch-size", "32"], "batch size 32 does not split evenly over 3 processes"),
])
def test_a_launch_that_cannot_work_is_one_line(args: list[str], message: str, tmp_path: Path, capsys) -> None:
    from seqrec.pipeline.cli import main

    assert main(["train", "--data", str(tmp_path / "absent.csv"), "--out", str(tmp_path / "run"), *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"seqrec: error: {message}") and err.count("\n") == 1, err
    assert not (tmp_path / "run").exists()  # refused before any data is read or process started
