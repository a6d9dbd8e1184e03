"""`seqrec demo`, the README's main job, run for a short time against the session's broker."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path


def processes_mentioning(text: str) -> list[int]:
    found = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                if text in (proc / "cmdline").read_bytes().decode(errors="replace"):
                    found.append(int(proc.name))
            except OSError:
                continue
    return found


def test_demo_runs_serves_and_cleans_up(kafka_bootstrap: str, tmp_path: Path) -> None:
    workdir = tmp_path / "demo"
    result = subprocess.run(
        [sys.executable, "-m", "pipeline.cli", "demo", "--duration", "20", "--users", "150", "--items", "60",
         "--retrain-interval", "10", "--workdir", str(workdir)],
        capture_output=True, text=True, timeout=540,
        env={**os.environ, "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap, "COLUMNS": "120"},
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    summary = re.search(r"summary: ([\d,]+) clicks sent, ([\d,]+) answered, hit rate@10 ([\d.]+), (\d+) model "
                        r"versions served, (\d+) dead letters; report: (\S+)", " ".join(result.stdout.split()))
    assert summary, result.stdout[-3000:]
    sent, answered = (int(summary.group(i).replace(",", "")) for i in (1, 2))
    assert sent > 0 and answered > 0
    assert 0.0 <= float(summary.group(3)) <= 1.0
    assert int(summary.group(4)) >= 1
    assert int(summary.group(5)) >= 1, "the demo mixes in malformed events; they must reach the dead-letter topic"
    assert Path(summary.group(6)).is_file()
    assert not processes_mentioning(str(workdir)), "the demo left a worker or retrain process running"
