"""`seqrec demo`, the README's main job, run for a short time against the session's broker."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
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
    started_ms = time.time_ns() // 1_000_000
    result = subprocess.run(
        [sys.executable, "-m", "seqrec.pipeline.cli", "demo", "--duration", "30", "--users", "150", "--items", "60",
         "--retrain-interval", "5", "--workdir", str(workdir)],
        capture_output=True, text=True, timeout=540,
        env={**os.environ, "SEQREC_KAFKA__BOOTSTRAP_SERVERS": kafka_bootstrap, "COLUMNS": "120"},
    )
    ended_ms = time.time_ns() // 1_000_000
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    summary = re.search(r"summary: ([\d,]+) clicks sent, ([\d,]+) answered, hit rate@10 ([\d.]+), (\d+) model "
                        r"versions served, (\d+) dead letters, (\d+) answers on request; report: (\S+)",
                        " ".join(result.stdout.split()))
    assert summary, result.stdout[-3000:]
    sent, answered = (int(summary.group(i).replace(",", "")) for i in (1, 2))
    assert sent > 0 and answered > 0
    assert 0.0 <= float(summary.group(3)) <= 1.0
    # The first version is trained in-process; a second one can only come from the
    # `seqrec retrain --interval` loop on the clicks topic, through the store and a hot-swap.
    assert int(summary.group(4)) >= 2, "the retrain loop never got a version served:\n" + retrain_log(workdir)
    assert int(summary.group(5)) >= 1, "the demo mixes in malformed events; they must reach the dead-letter topic"
    assert int(summary.group(6)) >= 1, "the demo asks the request API beside the stream"
    assert Path(summary.group(7)).is_file()
    # The archiver keeps the clicks, and the retrain loop reads them from there.
    shown = " ".join(result.stdout.split())
    archived = re.search(r"click archive \(seqrec archive\) │ ([\d,]+) clicks in (\d+) files", shown)
    assert archived and int(archived.group(1).replace(",", "")) > 0, shown[-2000:]
    assert list((workdir / "archive").rglob("date=*/*.parquet"))
    assert re.search(r"last retrain \(from the archive\) │ [\d,]+ clicks trained", shown), shown[-2000:]
    # kafka-python's own warnings go to a file, not between the live figures.
    assert "kafka.net" not in result.stdout + result.stderr, (result.stdout + result.stderr)[-2000:]
    assert not processes_mentioning(str(workdir)), "the demo left a worker or retrain process running"

    # The data behind the report's plots says something true about this run.
    run = json.loads((Path(summary.group(7)).parent / "report.json").read_text())["runs"][0]
    starts = [w["start_ms"] for w in run["windows"]]
    assert len(starts) > 1, "NDCG per window: one window over the whole run"
    assert started_ms - 60_000 <= min(starts) and max(starts) <= ended_ms
    assert len(run["versions"]) >= 2
    assert all(started_ms <= t <= ended_ms for t, _ in run["versions"]), run["versions"]
    assert run["catchup_latency_ms"] and run["batch_latency_ms"], "live latency apart from the catch-up"
    assert len(run["catchup_latency_ms"]) + len(run["batch_latency_ms"]) == answered


def retrain_log(workdir: Path) -> str:
    path = workdir / "retrain.log"
    return path.read_text(errors="replace")[-3000:] if path.exists() else "(no retrain.log)"


def test_kafka_pythons_warnings_go_to_the_demos_log_file(tmp_path: Path) -> None:
    import logging

    from seqrec.pipeline.devtools.demo import _kafka_client_logs_to

    console: list[str] = []
    handler = logging.Handler()
    handler.emit = lambda record: console.append(record.getMessage())  # type: ignore[method-assign]
    logging.getLogger().addHandler(handler)
    try:
        with _kafka_client_logs_to(tmp_path / "kafka-clients.log"):
            logging.getLogger("kafka.net.selector").warning("Task <x> ran for 0.101s, blocking the event loop")
            logging.getLogger("seqrec.demo").warning("a line of our own")
        logging.getLogger("kafka.conn").warning("after the demo")
    finally:
        logging.getLogger().removeHandler(handler)
    assert console == ["a line of our own", "after the demo"]
    assert "kafka.net.selector: Task <x> ran for 0.101s" in (tmp_path / "kafka-clients.log").read_text()
