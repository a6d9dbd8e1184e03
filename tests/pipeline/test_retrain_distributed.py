"""`seqrec retrain --nproc N`: the trainings run in N processes, the gate and the publishing in the
calling one (issue 29, item 3)."""

from __future__ import annotations

import functools
import logging
from pathlib import Path

import pytest

from seqrec.model.config import ModelConfig
from seqrec.model.data import synthetic_clicks
from seqrec.model.distributed import run
from seqrec.model.train import TrainConfig, train
from seqrec.pipeline.cli import main
from seqrec.pipeline.evaluation.clicklog import clicks_from_rows, write_click_log
from seqrec.pipeline.lifecycle.model_store import ModelStore
from seqrec.pipeline.lifecycle.retrain import GatePolicy, retrain_once


def test_the_gate_scores_and_publishes_what_two_processes_trained(tmp_path: Path, caplog, capfd) -> None:
    clicks = list(clicks_from_rows(synthetic_clicks(300, 120, n_clusters=6, seed=3)))
    store = ModelStore(tmp_path / "store")
    caplog.set_level(logging.INFO)  # the launched ranks log at this process's level, to its stderr
    outcome = retrain_once(clicks, store, policy=GatePolicy(refit_epochs=0),  # one launch: a few seconds
                           train_config=TrainConfig(epochs=6, patience=3, batch_size=64, progress=False, seed=1),
                           model_config=ModelConfig(n_items=1, max_len=20, d_model=32, n_heads=2, n_blocks=1),
                           work_dir=tmp_path / "work", train_fn=functools.partial(run, train, nproc=2, threads=1))
    assert outcome.published and store.latest() == outcome.version, outcome.line()
    assert outcome.new_score > outcome.popularity_score  # rank 0's best.pt, read back and gated here
    assert "2 processes, 32 rows each of every batch of 64" in capfd.readouterr().err


@pytest.mark.parametrize("args, env, message", [
    (["--nproc", "3"], {}, "batch size 128 does not split evenly over 3 processes"),
    ([], {"RANK": "0", "WORLD_SIZE": "2", "LOCAL_RANK": "0"},
     "seqrec retrain starts its own training processes: run it with --nproc N, not under torchrun"),
])
def test_a_retrain_that_cannot_run_distributed_is_one_line(args: list[str], env: dict[str, str], tmp_path: Path,
                                                            monkeypatch, capsys, message: str) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    write_click_log(clicks_from_rows(synthetic_clicks(20, 20, n_clusters=2, seed=0)), tmp_path / "log")
    store = tmp_path / "store"
    assert main(["retrain", "--log", str(tmp_path / "log"), "--store", str(store), *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"seqrec: error: {message}") and err.count("\n") == 1, err
    assert ModelStore(store).latest() is None
