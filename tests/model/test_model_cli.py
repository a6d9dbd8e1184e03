"""`seqrec train` / `seqrec evaluate` end to end on a tiny synthetic CSV log, and their errors."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import torch

from seqrec.model.data import synthetic_clicks
from seqrec.pipeline.cli import main


@pytest.fixture()
def one_thread():
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)  # --threads 1 below sets it for the whole process


@pytest.fixture(scope="module")
def log_csv(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("data") / "clicks.csv"
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["user_id", "item_id", "timestamp"])
        w.writerows(synthetic_clicks(120, 30, n_clusters=3, seed=2))
    return path


def test_train_then_evaluate(log_csv: Path, tmp_path: Path, capsys, one_thread) -> None:
    out = tmp_path / "run"
    rc = main(["train", "--data", str(log_csv), "--out", str(out), "--epochs", "2", "--max-len", "10",
               "--d-model", "16", "--blocks", "1", "--threads", "1", "--no-progress"])
    assert rc == 0
    text = capsys.readouterr().out
    assert "best epoch" in text and "NDCG@10" in text and "test (seen excluded)" in text
    assert (out / "best.pt").exists() and (out / "last.pt").exists()
    rc = main(["evaluate", str(out / "best.pt"), "--data", str(log_csv), "--json", "--include-seen"])
    assert rc == 0
    report = json.loads(capsys.readouterr().out)
    assert report["exclude_seen"] is False and report["split"] == "test"
    assert 0.0 <= report["metrics"]["HR@10"] <= 1.0
    assert main(["evaluate", str(out / "best.pt"), "--data", str(log_csv)]) == 0
    assert "seen items excluded" in capsys.readouterr().out


def test_missing_data_file_is_one_line_error(tmp_path: Path, capsys) -> None:
    rc = main(["train", "--data", str(tmp_path / "none.txt"), "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert rc == 1 and err.strip().count("\n") == 0 and "dataset file not found" in err


def test_bad_arguments_are_usage_errors(log_csv: Path, tmp_path: Path, capsys) -> None:
    assert main(["train", "--data", str(log_csv), "--out", str(tmp_path), "--attention", "nope"]) == 2
    assert "valid:" in capsys.readouterr().err
    assert main(["train", "--data", str(log_csv), "--out", str(tmp_path), "--d-model", "15"]) == 2
    assert main(["train", "--data", str(log_csv)]) == 2  # --out missing
    assert main(["evaluate", str(tmp_path / "nope.pt"), "--data", str(log_csv)]) == 1
    assert "checkpoint not found" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        # Every user has fewer than 3 items: nothing to validate on (was a ZeroDivisionError).
        ([f"{u} {i}" for u in range(1, 40) for i in (u, u + 1)], "{path}: every user has fewer than 3 items"),
        # A SASRec file with a non-integer id (was a ValueError traceback).
        ([f"{u} {i}" for u in range(1, 40) for i in range(1, 7)][:10] + ["1 x"] +
         [f"{u} {i}" for u in range(1, 40) for i in range(1, 7)][10:], "{path}:11: ids must be integers"),
    ],
    ids=["fewer-than-3-items", "non-integer-id"],
)
def test_bad_training_data_is_one_line_naming_file_and_line(lines: list[str], message: str, tmp_path: Path,
                                                            capsys) -> None:
    path = tmp_path / "pairs.txt"
    path.write_text("\n".join(lines) + "\n")
    rc = main(["train", "--data", str(path), "--out", str(tmp_path / "o"), "--epochs", "1", "--no-progress"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 1 and len(err) == 1, err
    assert err[0].startswith("seqrec: error: " + message.format(path=path)), err
