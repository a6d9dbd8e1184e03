"""Shared fixtures. `kafka_bootstrap` is a real broker for the whole session (see
pipeline.devtools.kafka_provider for the order it is looked for in); it never skips: without a broker the
tests that need one fail and say why."""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from seqrec.pipeline.devtools.s3_provider import S3Server

from seqrec.pipeline.errors import BrokerError
from seqrec.pipeline.devtools.kafka_provider import provide_kafka


@pytest.fixture(scope="session")
def kafka_bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    for bootstrap, source in _started(provide_kafka(tmp_path_factory.mktemp("kafka")), BrokerError, "Kafka broker"):
        print(f"\nKafka for tests: {bootstrap} ({source})")
        yield bootstrap


def _started(provider: contextlib.AbstractContextManager, failure: type[Exception], what: str) -> Iterator:
    """The value of a session service's context manager, once; a start that fails with `failure`
    fails the test that needs it, with the reason (never a skip)."""
    try:
        value = provider.__enter__()
    except failure as exc:
        pytest.fail(f"no {what} for the tests: {exc}", pytrace=False)
    try:
        yield value
    finally:
        provider.__exit__(None, None, None)


@pytest.fixture
def topic_name(request: pytest.FixtureRequest) -> str:
    """A topic name no other test uses, so tests never see each other's messages."""
    return f"{request.node.name[:40]}-{uuid.uuid4().hex[:8]}".replace("[", "-").replace("]", "")


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real datasets, read by path (never copied into the project): `../shared/data` beside
    the checkout, or SEQREC_SHARED_DATA. Missing data fails the test that needs it, with the reason."""
    root = Path(os.environ.get("SEQREC_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
    if not (root / "README.md").is_file():
        pytest.fail(f"the shared datasets are not at {root} (set SEQREC_SHARED_DATA)", pytrace=False)
    return root


@pytest.fixture(scope="session")
def s3_server() -> Iterator["S3Server"]:
    """A real S3 server for the whole session (pipeline.devtools.s3_provider): SEQREC_TEST_S3_ENDPOINT
    (credentials in the AWS_* variables), MinIO where Docker answers, else moto's server process; never skips."""
    from seqrec.pipeline.devtools.s3_provider import S3Server, provide_s3
    from seqrec.pipeline.errors import ConfigError

    endpoint = os.environ.get("SEQREC_TEST_S3_ENDPOINT", "").strip()
    external = S3Server(endpoint, os.environ.get("AWS_ACCESS_KEY_ID", ""), os.environ.get("AWS_SECRET_ACCESS_KEY", ""),
                        "SEQREC_TEST_S3_ENDPOINT") if endpoint else None
    for server in _started(provide_s3(external), ConfigError, "S3 server"):
        print(f"\nS3 for tests: {server.endpoint} ({server.source})")
        yield server


@pytest.fixture
def s3_bucket(s3_server: "S3Server", monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh bucket on the session's S3 server, with this process's AWS variables pointing at
    it (subprocesses get them from `s3_server.env()`); returns its s3:// URL."""
    import fsspec

    for name, value in s3_server.env().items():
        monkeypatch.setenv(name, value)
    bucket = f"t-{uuid.uuid4().hex[:12]}"
    fs = fsspec.filesystem("s3", skip_instance_cache=True)
    fs.mkdir(bucket)
    return f"s3://{bucket}"
