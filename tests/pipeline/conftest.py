"""Fixtures for the pipeline's broker tests: a small really-trained checkpoint and a factory of
`seqrec worker` subprocesses, each with its own app id, topics, data directory and web port."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from seqrec.pipeline.devtools.harness import WorkerProcess
from seqrec.pipeline.devtools.kafka_local import LocalKafka, free_port


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real SASRec checkpoint: a few seconds of training on synthetic clicks."""
    from seqrec.model.data import sequences_from_clicks, synthetic_clicks
    from seqrec.model.train import TrainConfig, train

    clicks = synthetic_clicks(200, 100, seed=1)
    out = tmp_path_factory.mktemp("ckpt")
    result = train(
        sequences_from_clicks(clicks), None,
        TrainConfig(epochs=2, progress=False, device="cpu"), out,
        max_len=20, d_model=16, n_heads=1, n_blocks=1,
    )
    return result.best_path


@dataclass
class Deployment:
    """One app id and its topics on the test broker; `worker()` starts a worker in it."""

    bootstrap: str
    checkpoint: Path
    root: Path
    partitions: int = 4
    history_len: int = 10
    app_id: str = field(default_factory=lambda: f"t{uuid.uuid4().hex[:8]}")
    workers: list[WorkerProcess] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)  # e.g. the connection's security settings

    @property
    def clicks(self) -> str:
        return f"{self.app_id}-clicks"

    @property
    def recommendations(self) -> str:
        return f"{self.app_id}-recs"

    @property
    def dead_letters(self) -> str:
        return f"{self.app_id}-dlq"

    @property
    def changelog(self) -> str:
        return f"{self.app_id}-user-history-changelog"

    def worker_args(self, datadir: Path, port: int, *extra: str) -> list[str]:
        """`seqrec worker` options for a worker of this deployment."""
        return [
            "--checkpoint", str(self.checkpoint), "--brokers", self.bootstrap,
            "--app-id", self.app_id, "--datadir", str(datadir), "--web-port", str(port),
            "--clicks-topic", self.clicks, "--recommendations-topic", self.recommendations,
            "--dead-letter-topic", self.dead_letters, "--partitions", str(self.partitions),
            "--history-len", str(self.history_len), "--standby-replicas", "0",
            "--session-timeout", "6", "--heartbeat-interval", "1", "--rebalance-timeout", "10",
            "--commit-interval", "0.5", "--max-wait-ms", "5", "--torch-threads", "1",
            "--log-level", "info", *extra,
        ]

    def worker(self, *extra: str) -> WorkerProcess:
        n = len(self.workers)
        port = free_port()
        datadir = self.root / f"worker{n}"
        args = self.worker_args(datadir, port, *extra)
        w = WorkerProcess(args, log_path=self.root / f"worker{n}.log", web_port=port, datadir=datadir, env=self.env)
        self.workers.append(w)
        return w.start()


@pytest.fixture
def deployment(kafka_bootstrap: str, tiny_checkpoint: Path, tmp_path: Path) -> Iterator[Deployment]:
    d = Deployment(kafka_bootstrap, tiny_checkpoint, tmp_path)
    yield d
    for w in d.workers:
        w.kill()


@pytest.fixture(scope="session")
def deployment_class() -> type[Deployment]:
    """Deployment itself, for tests that deploy on a broker of their own or with their own env."""
    return Deployment


@pytest.fixture
def own_broker(tiny_checkpoint: Path, tmp_path: Path) -> Iterator[tuple[LocalKafka, Deployment]]:
    """A deployment on a broker of the test's own (not the session's), for tests that stop and
    start the broker."""
    broker = LocalKafka(data_dir=tmp_path / "kafka")
    d = Deployment(broker.start(), tiny_checkpoint, tmp_path)
    yield broker, d
    for w in d.workers:
        w.kill()
    broker.stop()
