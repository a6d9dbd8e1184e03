"""Every client against a broker that demands SCRAM-SHA-512 over TLS: a local broker of this
module's own with a SASL_SSL listener (a CA made for the run, the user created at format time).
The worker, `seqrec replay` and `seqrec retrain --topic` connect with the settings `seqrec kafka
start --secure` prints; a wrong password, an unknown CA and a PLAINTEXT client each fail within
seconds with one line naming the cause; the password shows up in no log and no metric."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from seqrec.model.data import synthetic_clicks
from seqrec.pipeline.evaluation.clicklog import clicks_from_rows
from seqrec.pipeline.devtools.harness import consume_until, produce_clicks
from seqrec.pipeline.errors import BrokerError
from seqrec.pipeline.devtools.kafka_local import LocalKafka, free_port
from seqrec.pipeline.kafka_security import check_connection
from seqrec.pipeline.devtools.local_tls import SecureFiles, client_environment, create_secure_files
from seqrec.pipeline.settings import load_settings
from seqrec.pipeline.serving.source import ClickEvent, encode_click

if TYPE_CHECKING:
    from conftest import Deployment

ENTRY = "import sys; from seqrec.pipeline.cli import main; sys.exit(main())"
FAIL_FAST_S = 25  # under kafka-python's own 30 s bootstrap timeout, which would say nothing useful


@dataclass
class SecureBroker:
    plaintext: str  # the broker's PLAINTEXT listener
    secure: str  # its SASL_SSL listener
    files: SecureFiles

    @property
    def env(self) -> dict[str, str]:
        return client_environment(self.secure, self.files)


@pytest.fixture(scope="module")
def secure_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecureBroker]:
    broker = LocalKafka(data_dir=tmp_path_factory.mktemp("secure-kafka"), secure=True)
    broker.start()
    try:
        assert broker.state is not None and broker.state.secure_bootstrap
        yield SecureBroker(broker.state.bootstrap, broker.state.secure_bootstrap, broker.secure_files)
    finally:
        broker.stop(remove_data=True)


def _clicks(prefix: str, n_users: int, seed: int) -> list[ClickEvent]:
    rows = ((f"{prefix}{user}", item, ts) for user, item, ts in synthetic_clicks(n_users, 100, seed=seed))
    return list(clicks_from_rows(rows))


def _seqrec(*args: str, env: dict[str, str], timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", ENTRY, *args], capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **env})


def _answered(event_ids: set[str]):
    return lambda records: event_ids <= {r.get("event_id") for r in records}


@pytest.fixture(scope="module")
def secure_deployment(secure_broker: SecureBroker, tiny_checkpoint: Path, deployment_class: type[Deployment],
                      tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    d = deployment_class(secure_broker.secure, tiny_checkpoint, tmp_path_factory.mktemp("secure-worker"),
                   env=secure_broker.env)
    d.worker().wait_ready(180)
    yield d
    for w in d.workers:
        w.kill()


def test_worker_answers_clicks_of_an_authenticated_producer(secure_broker: SecureBroker,
                                                            secure_deployment: Deployment) -> None:
    security = load_settings(**_settings_from_env(secure_broker.env)).kafka.security
    clicks = _clicks("p", 20, seed=2)[:60]
    produce_clicks(secure_broker.secure, secure_deployment.clicks, clicks, security)
    answers = consume_until(secure_broker.secure, secure_deployment.recommendations,
                            _answered({c.event_id for c in clicks}), timeout_s=120, security=security)
    assert {c.event_id for c in clicks} <= {r["event_id"] for r in answers.records}
    assert all(r["items"] for r in answers.records)


def test_replay_and_retrain_connect_over_sasl_ssl(secure_broker: SecureBroker, secure_deployment: Deployment,
                                                  tmp_path: Path) -> None:
    clicks = _clicks("r", 150, seed=3)
    log = tmp_path / "clicks.jsonl"
    log.write_bytes(b"".join(encode_click(c) + b"\n" for c in clicks))
    env = secure_broker.env
    replayed = _seqrec("replay", str(log), "--topic", secure_deployment.clicks, "--speed", "max",
                       "--bootstrap", secure_broker.secure, env=env)
    assert replayed.returncode == 0, replayed.stderr
    assert f"sent {len(clicks):,} clicks" in replayed.stdout
    security = load_settings(**_settings_from_env(env)).kafka.security
    answers = consume_until(secure_broker.secure, secure_deployment.recommendations,
                            _answered({c.event_id for c in clicks}), timeout_s=180, security=security)
    assert {c.event_id for c in clicks} <= {r["event_id"] for r in answers.records}

    # One epoch on 150 clicks does not beat the most popular items; the tolerance lets it publish,
    # which is what shows that the job read the topic over SASL_SSL.
    retrained = _seqrec("retrain", "--store", str(tmp_path / "store"), "--topic", secure_deployment.clicks,
                        "--bootstrap", secure_broker.secure, "--epochs", "1", "--tolerance", "1", env=env)
    assert retrained.returncode == 0, retrained.stderr
    assert "published" in retrained.stdout


def test_evaluate_replay_via_kafka_connects_over_sasl_ssl(secure_broker: SecureBroker, secure_deployment: Deployment,
                                                         tiny_checkpoint: Path, tmp_path: Path) -> None:
    clicks = _clicks("e", 30, seed=5)
    log = tmp_path / "clicks.jsonl"
    log.write_bytes(b"".join(encode_click(c) + b"\n" for c in clicks))
    result = _seqrec("evaluate-replay", str(log), "--model", str(tiny_checkpoint), "--via-kafka",
                     "--clicks-topic", secure_deployment.clicks,
                     "--recommendations-topic", secure_deployment.recommendations,
                     "--bootstrap", secure_broker.secure, "--json", env=secure_broker.env)
    assert result.returncode == 0, result.stderr
    (run,) = json.loads(result.stdout)
    assert run["name"] == "kafka" and run["unanswered"] == 0 and run["scored"] > 0  # every click answered


def _settings_from_env(env: dict[str, str]) -> dict[str, object]:
    """The nested settings dict the SEQREC_KAFKA__SECURITY__* variables describe."""
    prefix = "SEQREC_KAFKA__SECURITY__"
    security = {k[len(prefix):].lower(): v for k, v in env.items() if k.startswith(prefix)}
    return {"kafka": {"bootstrap_servers": env["SEQREC_KAFKA__BOOTSTRAP_SERVERS"], "security": security}}


# ---- refused connections: fast, one line, the cause named, no secret -----------------------------------

WRONG_PASSWORD = "not-the-password-4f1c9"


def _wrong_password(broker: SecureBroker, tmp: Path) -> dict[str, str]:
    env = {k: v for k, v in broker.env.items() if k != "SEQREC_KAFKA__SECURITY__SASL_PASSWORD_FILE"}
    return {**env, "SEQREC_KAFKA__SECURITY__SASL_PASSWORD": WRONG_PASSWORD}


def _unknown_ca(broker: SecureBroker, tmp: Path) -> dict[str, str]:
    other = create_secure_files(tmp / "other-ca")  # a CA that did not sign the broker's certificate
    return {**broker.env, "SEQREC_KAFKA__SECURITY__SSL_CAFILE": str(other.ca)}


def _plaintext(broker: SecureBroker, tmp: Path) -> dict[str, str]:
    return {"SEQREC_KAFKA__BOOTSTRAP_SERVERS": broker.secure, "SEQREC_KAFKA__SECURITY__PROTOCOL": "PLAINTEXT"}


@pytest.mark.parametrize(("make_env", "cause"), [
    (_wrong_password, "authentication failed"),
    (_unknown_ca, "certificate not trusted"),
    (_plaintext, "the broker wants TLS"),
], ids=["wrong-password", "unknown-ca", "plaintext-on-tls-port"])
def test_a_refused_connection_fails_fast_with_its_cause(secure_broker: SecureBroker, tmp_path: Path,
                                                         make_env, cause: str) -> None:
    log = tmp_path / "clicks.jsonl"
    log.write_bytes(b"".join(encode_click(c) + b"\n" for c in _clicks("f", 5, seed=4)))
    env = make_env(secure_broker, tmp_path)
    result = _seqrec("replay", str(log), "--topic", "refused", "--speed", "max",
                     "--bootstrap", secure_broker.secure, env=env, timeout=FAIL_FAST_S)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("seqrec: error: ") and cause in lines[0], result.stderr
    for secret in (WRONG_PASSWORD, secure_broker.files.password()):
        assert secret not in result.stdout + result.stderr


def test_a_worker_with_a_wrong_password_stops_with_one_line(secure_broker: SecureBroker, tiny_checkpoint: Path,
                                                            deployment_class: type[Deployment], tmp_path: Path) -> None:
    d = deployment_class(secure_broker.secure, tiny_checkpoint, tmp_path, env=_wrong_password(secure_broker, tmp_path))
    worker = d.worker()
    assert worker.proc is not None
    code = worker.proc.wait(FAIL_FAST_S + 30)  # the model loads first
    output = worker.log_path.read_text()
    assert code == 1
    assert output.strip().splitlines()[-1].startswith("seqrec: error: cannot connect to Kafka")
    assert "authentication failed" in output and WRONG_PASSWORD not in output


def test_no_log_line_and_no_metric_holds_the_password(secure_broker: SecureBroker,
                                                      secure_deployment: Deployment) -> None:
    password = secure_broker.files.password()
    worker = secure_deployment.workers[0]
    status, metrics = worker.get("/metrics")
    assert status == 200 and b"seqrec" in metrics
    assert password.encode() not in metrics
    log_text = worker.log_path.read_text(errors="replace")
    assert "[INFO]" in log_text  # the worker did log
    leaking = [line for line in log_text.splitlines() if password in line]
    assert leaking == []


def test_the_local_secure_broker_keeps_its_secrets_private(secure_broker: SecureBroker) -> None:
    files = secure_broker.files
    for private in (files.password_file, files.keystore):
        assert stat.S_IMODE(private.stat().st_mode) == 0o600
    password = files.password()
    data_dir = files.root.parent
    for path in (data_dir / "server.properties", data_dir / "server.log", data_dir / "stdout.log"):
        assert password not in path.read_text(errors="replace")
    assert not (data_dir / "format.args").exists()  # the format step's argument file is gone
    assert all(password not in value for value in secure_broker.env.values())


def test_a_dead_first_bootstrap_address_does_not_hide_a_live_one(secure_broker: SecureBroker) -> None:
    security = load_settings(**_settings_from_env(secure_broker.env)).kafka.security
    check_connection(f"127.0.0.1:{free_port()},{secure_broker.secure}", security)
    with pytest.raises(BrokerError, match="the port does not answer"):
        check_connection(f"127.0.0.1:{free_port()}", security)
