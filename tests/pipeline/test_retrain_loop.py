"""`seqrec retrain --interval` on a clicks topic of the real broker, as the demo and a deployment
run it: a failed run (no topic yet, an unreadable serving model) leaves the store as it was and
the loop carries on; once clicks are there, versions are published run after run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from seqrec.model.data import synthetic_clicks
from seqrec.pipeline.evaluation.clicklog import clicks_from_rows
from seqrec.pipeline.devtools.harness import produce_clicks
from seqrec.pipeline.lifecycle.model_store import ModelStore

T = TypeVar("T")


def wait_for(condition: Callable[[], T], what: str, timeout_s: float = 240) -> T:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.2)
    raise TimeoutError(f"waited {timeout_s:.0f} s for {what}")


def test_interval_loop_survives_failed_runs_and_publishes_again(kafka_bootstrap: str, topic_name: str,
                                                               tmp_path: Path) -> None:
    store = ModelStore(tmp_path / "store")
    log_path = tmp_path / "retrain.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "seqrec.pipeline.cli", "retrain", "--store", store.url, "--topic", topic_name,
             "--bootstrap", kafka_bootstrap, "--interval", "1", "--epochs", "2", "--tolerance", "1"],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            env={**os.environ, "OMP_NUM_THREADS": "1"})

    def failures() -> int:
        return log_path.read_text(errors="replace").count("retrain failed:")

    def alive() -> None:
        assert proc.poll() is None, f"the loop stopped:\n{log_path.read_text(errors='replace')[-3000:]}"

    try:
        # 1. No topic yet: the run fails, nothing is published, the loop waits for the next one.
        wait_for(lambda: failures() >= 1 or proc.poll() is not None, "a failed run")
        alive()
        assert store.latest() is None and not store.versions()

        # 2. Clicks arrive: the next run publishes a first version.
        produce_clicks(kafka_bootstrap, topic_name, clicks_from_rows(synthetic_clicks(120, 50, seed=3)))
        first = wait_for(store.latest, "a first version")
        alive()

        # 3. The serving file becomes unreadable (a damaged volume): runs fail, the store stays.
        saved: dict[Path, bytes] = {}
        before = failures()

        def damage_serving() -> bool:
            path = Path(store.url, "versions", f"{store.latest()}.pt")
            if path not in saved:  # a run may have published again meanwhile: damage that one
                saved[path] = path.read_bytes()
                path.write_bytes(b"damaged")
            return failures() > before

        wait_for(damage_serving, "a run failing on the damaged serving model")
        snapshot = (store.history(), sorted(p.name for p in Path(store.url, "versions").glob("*.pt")))
        counted = failures()
        wait_for(lambda: failures() > counted, "a second failed run")
        alive()
        assert (store.history(), sorted(p.name for p in Path(store.url, "versions").glob("*.pt"))) == snapshot, \
            "a failed run changed the store"
        assert "does not match its checksum" in log_path.read_text(errors="replace")

        # 4. Repaired: the loop publishes a new version again.
        for path, data in saved.items():
            path.write_bytes(data)
        served = set(snapshot[0])
        second = wait_for(lambda: store.latest() not in served and store.latest(), "a version after the repair")
        alive()
        assert second != first
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(30)
