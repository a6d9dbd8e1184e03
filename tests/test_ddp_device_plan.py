"""`benchmarks/ddp_device.sh`, issue 29's prepared GPU call, run end to end on the CPU with a tiny
dataset: a device session has 15 minutes in all, so a script that breaks there wastes them."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_ddp_plan_compares_one_process_with_two_and_writes_both(tmp_path: Path) -> None:
    data = tmp_path / "ml-1m.txt.gz"
    with gzip.open(data, "wt") as f:  # `user item` lines in time order, ml-1m's layout
        f.writelines(f"{user} {(user + i) % 40 + 1}\n" for user in range(1, 61) for i in range(10))
    env = {**os.environ, "DEVICE": "cpu", "MINUTES": "0.05", "DATA": str(data), "OUT": str(tmp_path / "out"),
           "RUNS": str(tmp_path / "runs")}
    result = subprocess.run(["bash", "benchmarks/ddp_device.sh"], cwd=ROOT, env=env, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    runs = json.loads((tmp_path / "out" / "ddp_cpu_gloo.json").read_text())["runs"]
    assert [r["nproc"] for r in runs] == [1, 2]
    assert all(0.0 <= r["valid_ndcg@10"] <= 1.0 and r["epochs_run"] >= 1 for r in runs)
    assert (tmp_path / "runs" / "cpu" / "nproc2" / "best.pt").is_file()


def test_ddp_plan_refuses_a_missing_data_file_in_one_line(tmp_path: Path) -> None:
    env = {**os.environ, "DATA": str(tmp_path / "nothing.gz"), "OUT": str(tmp_path)}
    result = subprocess.run(["bash", "benchmarks/ddp_device.sh"], cwd=ROOT, env=env, capture_output=True, text=True)
    assert result.returncode == 2 and result.stderr.count("\n") == 1 and "no data file" in result.stderr
