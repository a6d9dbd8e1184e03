"""`benchmarks/genatt_device.sh`, issue 14's one prepared GPU call, run end to end on the CPU with a
tiny dataset: a device session has 15 minutes in all, so a script that breaks there wastes them."""

from __future__ import annotations

import gzip
import json
import os
import random
import subprocess
import tarfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
KINDS = ("softmax", "vgenatt", "dgenatt")


def write_pairs(path: Path, users: int = 80, items: int = 60, length: int = 12) -> None:
    """`user item` lines in time order, the layout of ml-1m.txt.gz."""
    rng = random.Random(0)
    with gzip.open(path, "wt") as f:
        for user in range(1, users + 1):
            start = rng.randrange(items)
            f.writelines(f"{user} {(start + i) % items + 1}\n" for i in range(length))


def run_plan(tmp_path: Path, data: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DEVICE": "cpu", "SEEDS": "1", "MINUTES": "0.02", "DATA": str(data),
           "OUT": str(tmp_path / "out"), "RUNS": str(tmp_path / "runs")}
    return subprocess.run(["bash", "benchmarks/genatt_device.sh"], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=300)


def selected_setting(kind: str) -> tuple[float, float, dict]:
    """(dropout, lr, options) of the tuning run that beauty's grid selected for `kind`."""
    for path in (ROOT / "docs/results/genatt/tuning").glob(f"beauty_ce_{kind}_*.json"):
        run = json.loads(path.read_text())
        if run["kind"] == kind and run.get("selected"):
            return run["train_args"]["dropout"], run["train_args"]["lr"], run["options"]
    raise AssertionError(f"no selected tuning run for {kind}")


def test_device_plan_trains_every_kind_at_its_tuned_setting_and_packs_the_runs(tmp_path: Path) -> None:
    data = tmp_path / "ml-1m.txt.gz"
    write_pairs(data)
    result = run_plan(tmp_path, data)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]

    results = tmp_path / "runs" / "softmax" / "results"
    for kind in KINDS:
        run = json.loads((results / f"ml-1m_ce_{kind}_L200_seed1.json").read_text())
        assert (run["set"], run["loss"], run["kind"], run["seed"]) == ("ml-1m", "ce", kind, 1)
        assert run["train_args"]["max_len"] == 200
        assert (run["train_args"]["dropout"], run["train_args"]["lr"], run["options"]) == selected_setting(kind)
        assert ("paired" in run) == (kind != "softmax")

        with tarfile.open(tmp_path / "out" / f"ml1m-{kind}.tgz") as archive:
            names = {Path(name).name for name in archive.getnames()}
        assert {"best.pt", "summary.json", "history.jsonl", "log.txt"} <= names
        assert "last.pt" not in names  # the archives must fit the device's 16 MiB per file
    assert "| dgenatt | 1 | test NDCG@10 |" in (tmp_path / "out" / "paired.md").read_text()


def test_device_plan_without_its_data_file_says_so_in_one_line(tmp_path: Path) -> None:
    result = run_plan(tmp_path, tmp_path / "absent.txt.gz")
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0 and "no data file" in result.stderr
    assert not (tmp_path / "runs").exists()
