"""Where an S3 server for tests and the demo comes from, in the order the broker uses
(pipeline.devtools.kafka_provider):

1. A server the caller names (the tests: `SEQREC_TEST_S3_ENDPOINT`, with the credentials in
   the usual AWS variables): used as it is.
2. A Docker engine answers and testcontainers is installed: MinIO in a container.
3. Otherwise: moto's standalone S3 server (`moto[server]`), a process of its own on 127.0.0.1.

Each yields an `S3Server`: the endpoint URL and the credentials a client passes through the
environment (`AWS_ENDPOINT_URL`, `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`), which is how the
archive and the model store are told where S3 is: never an option, never logged.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass

from seqrec.pipeline.devtools.kafka_local import free_port
from seqrec.pipeline.devtools.kafka_provider import docker_available, testcontainers_installed
from seqrec.pipeline.errors import ConfigError

MINIO_IMAGE = "minio/minio:RELEASE.2025-04-22T22-12-26Z"
_START_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class S3Server:
    endpoint: str
    access_key: str
    secret_key: str
    source: str  # where it came from, for the test log

    def env(self) -> dict[str, str]:
        """The variables an S3 client (boto3, s3fs) reads to reach this server."""
        return {"AWS_ENDPOINT_URL": self.endpoint, "AWS_ACCESS_KEY_ID": self.access_key,
                "AWS_SECRET_ACCESS_KEY": self.secret_key, "AWS_DEFAULT_REGION": "us-east-1"}


def _wait_until_answering(url: str, process: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + _START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise ConfigError(f"the S3 server at {url} exited with code {process.returncode} while starting")
        try:
            urllib.request.urlopen(url, timeout=1).close()
            return
        except urllib.error.HTTPError:
            return  # it answered, if only to refuse an unsigned request
        except OSError:
            time.sleep(0.2)
    raise ConfigError(f"the S3 server at {url} did not answer within {_START_TIMEOUT_S:.0f} s")


@contextlib.contextmanager
def moto_server(check_credentials: bool = False) -> Iterator[S3Server]:
    """moto's S3 server; it takes any key pair unless `check_credentials` (then every key pair is
    unknown to it: a server that refuses the credentials, for tests of that failure)."""
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    env = {**os.environ, "INITIAL_NO_AUTH_ACTION_COUNT": "0"} if check_credentials else None
    process = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    try:
        _wait_until_answering(endpoint, process)
        # moto accepts any key pair; these exist only in this process's test server.
        yield S3Server(endpoint, "testing", "testing", "moto server")
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()


@contextlib.contextmanager
def minio_in_container() -> Iterator[S3Server]:
    from testcontainers.community.minio import MinioContainer  # the `minio` extra of testcontainers

    with MinioContainer(MINIO_IMAGE) as minio:
        config = minio.get_config()
        yield S3Server(f"http://{config['endpoint']}", config["access_key"], config["secret_key"], "testcontainers MinIO")


@contextlib.contextmanager
def provide_s3(external: S3Server | None = None) -> Iterator[S3Server]:
    """An S3 server (`external` when given), and whatever was started for it torn down afterwards."""
    if external is not None:
        yield external
        return
    if docker_available() and testcontainers_installed():
        with minio_in_container() as server:
            yield server
        return
    with moto_server() as server:
        yield server
