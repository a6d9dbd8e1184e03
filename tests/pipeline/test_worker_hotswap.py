"""Hot-swap in a running `seqrec worker` on the real broker: a published model takes over while
clicks flow, bad versions are refused while the old one serves, rollback goes back; a store on a
real S3 server is followed the same way, and one that cannot be reached is logged, not fatal."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from seqrec.pipeline.devtools.harness import consume_until, produce_clicks
from seqrec.pipeline.devtools.kafka_local import free_port
from seqrec.pipeline.lifecycle.model_store import ModelStore
from seqrec.pipeline.serving.source import ClickEvent


def train_tiny(out: Path, seed: int, **shape: int) -> Path:
    from seqrec.model.data import sequences_from_clicks, synthetic_clicks
    from seqrec.model.train import TrainConfig, train

    config = {"max_len": 20, "d_model": 16, "n_heads": 1, "n_blocks": 1, **shape}
    result = train(sequences_from_clicks(synthetic_clicks(200, 100, seed=1)), None,
                   TrainConfig(epochs=2, progress=False, device="cpu", seed=seed), out, **config)
    return result.best_path


@pytest.fixture(scope="module")
def other_models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("models")
    return {"same_shape": train_tiny(root / "v2", seed=7), "wider": train_tiny(root / "wide", seed=7, d_model=32)}


def clicks_for(prefix: str, n: int, users: int = 20) -> list[ClickEvent]:
    now = int(time.time() * 1000)
    return [ClickEvent(f"{prefix}{j}", f"u{j % users}", f"i{j % 100}", now + j) for j in range(n)]


def versions_of(d, prefix: str, n: int, timeout_s: float = 60) -> dict[str, str]:
    """event id -> model version of the answers to the clicks `prefix`0..n-1 (first answer wins)."""
    ids = {f"{prefix}{j}" for j in range(n)}
    records = consume_until(d.bootstrap, d.recommendations,
                            lambda rs: ids <= {r["event_id"] for r in rs}, timeout_s=timeout_s).records
    out: dict[str, str] = {}
    for r in records:
        if r["event_id"] in ids:
            out.setdefault(r["event_id"], r["model_version"])
    return out


def worker_following_store(d, store_url: str, *extra: str):
    """A store whose serving version is the deployment's checkpoint, and a ready worker on it."""
    store = ModelStore(store_url)
    store.publish(d.checkpoint)
    w = d.worker("--model-store", store.url, "--model-poll", "0.5", *extra)
    w.wait_ready()
    return store, w


def publish_with_cli(store: ModelStore, checkpoint: Path) -> str:
    result = subprocess.run([sys.executable, "-m", "seqrec.pipeline.cli", "models", "publish", str(checkpoint),
                             "--store", store.url], capture_output=True, text=True, timeout=120, check=True)
    return result.stdout.strip()


@pytest.mark.parametrize("inference", ["thread", "process"])
def test_publish_while_streaming_swaps_without_losing_a_click(deployment, other_models, tmp_path: Path,
                                                              inference: str) -> None:
    d = deployment
    store, w = worker_following_store(d, str(tmp_path / "store"), "--inference", inference)
    v1 = store.latest()

    stream = clicks_for("s", 1500)
    stop = threading.Event()

    def produce() -> None:  # 1,500 clicks over about 15 s, in small bursts
        for start in range(0, len(stream), 50):
            produce_clicks(d.bootstrap, d.clicks, stream[start:start + 50])
            if stop.wait(0.5):
                return

    producer = threading.Thread(target=produce)
    producer.start()
    time.sleep(4)
    v2 = publish_with_cli(store, other_models["same_shape"])  # as an operator does
    producer.join()

    versions = versions_of(d, "s", len(stream), timeout_s=120)
    assert len(versions) == len(stream), "a click was left without a recommendation"
    assert set(versions.values()) == {v1, v2}
    order = [versions[c.event_id] for c in stream]
    switch = order.index(v2)
    assert v1 not in order[switch + 200:], "the old model still answered long after the swap"
    assert w.metric("seqrec_model_swaps_total") == 1
    assert w.proc is not None and w.proc.poll() is None
    if inference == "process":  # the swapped-out model's process is gone, the new one serves
        assert len(w.model_processes()) == 1, f"model processes of the worker: {w.model_processes()}"


def test_rollback_and_bad_versions_refused(deployment, other_models, tmp_path: Path) -> None:
    d = deployment
    store, w = worker_following_store(d, str(tmp_path / "store"))
    v1 = store.latest()

    def served_by(prefix: str) -> set[str]:
        time.sleep(2)  # a few polls of the store
        produce_clicks(d.bootstrap, d.clicks, clicks_for(prefix, 50))
        return set(versions_of(d, prefix, 50).values())

    v2 = store.publish(other_models["same_shape"])
    assert served_by("a") == {v2}
    assert store.rollback() == v1
    assert served_by("b") == {v1}, "rollback must return serving to the previous version"

    store.publish(other_models["wider"], force_incompatible=True)  # a valid checkpoint of another architecture
    assert served_by("c") == {v1}
    # A damaged volume: the pointer names a garbage file.
    (Path(store.url, "versions") / "20990101T000000Z-deadbeef.pt").write_bytes(b"garbage")
    Path(store.url, "LATEST").write_text("20990101T000000Z-deadbeef\n")
    assert served_by("e") == {v1}
    assert w.metric('seqrec_model_swaps_total{outcome="refused"}') == 2
    assert w.metric('seqrec_model_swaps_total{outcome="swapped"}') == 2
    assert "refused model version" in w.log_tail(200)


def test_an_unreachable_store_is_one_line_per_look_and_the_model_keeps_serving(deployment) -> None:
    d = deployment
    secret = "hunter2-not-for-logs"
    # Nothing listens at the endpoint; one attempt per look, as botocore's retries would hide the backoff.
    d.env.update({"AWS_ENDPOINT_URL": f"http://127.0.0.1:{free_port()}", "AWS_ACCESS_KEY_ID": "AKIAEXAMPLE",
                  "AWS_SECRET_ACCESS_KEY": secret, "AWS_DEFAULT_REGION": "us-east-1", "AWS_MAX_ATTEMPTS": "1"})
    url = "s3://models-bucket/prod"
    w = d.worker("--model-store", url, "--model-poll", "0.5")  # starts from --checkpoint
    w.wait_ready()
    started = time.monotonic()
    produce_clicks(d.bootstrap, d.clicks, clicks_for("a", 50))
    assert len(versions_of(d, "a", 50)) == 50, "the worker must serve while its store is away"
    time.sleep(max(0.0, 8 - (time.monotonic() - started)))

    log = w.log_tail(400)
    looks = [line for line in log.splitlines() if f"cannot read the model store {url}" in line]
    # Polled every 0.5 s, it looks again 1, 2, 4, 8 s after each failure: a handful of lines, not 16+.
    assert 2 <= len(looks) <= 5, log
    assert all("still serving" in line and "next look in" in line for line in looks), looks
    assert "Traceback" not in log and secret not in log
    assert w.proc is not None and w.proc.poll() is None
