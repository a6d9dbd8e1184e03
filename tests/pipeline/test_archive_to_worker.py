"""Scale-out end to end on the real broker and a real S3 server: clicks are answered and archived,
a retrain reads a window of the archive and publishes to an s3:// model store, and a worker on its
own data directory, following that store, hot-swaps to the new version while it serves."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from seqrec.pipeline.cli import main
from seqrec.pipeline.devtools.harness import consume_until, produce_clicks
from seqrec.pipeline.serving.source import ClickEvent
from seqrec.pipeline.settings import ArchiveSettings, KafkaSettings
from seqrec.pipeline.storage.archive import ClickArchiver


def clicks(prefix: str, n: int, users: int = 40) -> list[ClickEvent]:
    """Each user walks through items in a fixed order, so a model has something to learn."""
    now = int(time.time() * 1000)
    return [ClickEvent(f"{prefix}{j}", f"u{j % users}", f"i{(j // users + j % users) % 60}", now + j) for j in range(n)]


def answer_versions(d, prefix: str, n: int, timeout_s: float = 60) -> dict[str, str]:
    ids = {f"{prefix}{j}" for j in range(n)}
    records = consume_until(d.bootstrap, d.recommendations, lambda rs: ids <= {r["event_id"] for r in rs},
                            timeout_s=timeout_s).records
    return {r["event_id"]: r["model_version"] for r in records if r["event_id"] in ids}


def test_archive_retrain_publish_to_s3_and_a_worker_hot_swaps_from_it(
        deployment, s3_server, s3_bucket: str, capsys: pytest.CaptureFixture[str]) -> None:
    d = deployment
    d.env.update(s3_server.env())
    archive, store = f"{s3_bucket}/clicks", f"{s3_bucket}/models"
    assert main(["models", "publish", str(d.checkpoint), "--store", store]) == 0
    first_version = capsys.readouterr().out.strip()
    worker = d.worker("--model-store", store, "--model-poll", "0.5")

    archiver = ClickArchiver(ArchiveSettings(url=archive, group_id=f"{d.app_id}-archive", max_file_seconds=0.5),
                             KafkaSettings(bootstrap_servers=d.bootstrap, clicks_topic=d.clicks))
    stop = threading.Event()
    archiving = threading.Thread(target=archiver.run, args=(stop,))
    archiving.start()
    try:
        worker.wait_ready()
        history = clicks("h", 1200)
        produce_clicks(d.bootstrap, d.clicks, history)
        assert set(answer_versions(d, "h", len(history)).values()) == {first_version}
        deadline = time.monotonic() + 60
        while archiver.stats.archived < len(history) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert archiver.stats.archived == len(history)
    finally:
        stop.set()
        archiving.join(30)

    # The gate is not under test here: any trained model may replace the tiny one.
    assert main(["retrain", "--archive", archive, "--window", "1d", "--store", store, "--epochs", "5",
                 "--tolerance", "1"]) == 0
    outcome = capsys.readouterr().out
    assert "1,080 clicks trained, 120 held out" in outcome and "published" in outcome, outcome
    new_version = outcome.split("published ")[1].split()[0]

    deadline = time.monotonic() + 60
    while worker.metric("seqrec_model_swaps_total") < 1 and time.monotonic() < deadline:
        time.sleep(0.5)
    later = clicks("after", 100)
    produce_clicks(d.bootstrap, d.clicks, later)
    assert set(answer_versions(d, "after", len(later)).values()) == {new_version}
