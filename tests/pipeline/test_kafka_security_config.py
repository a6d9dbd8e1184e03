"""The security settings and what each client library gets from them (no broker needed)."""

from __future__ import annotations

import logging
import ssl
from pathlib import Path

import faust
import pytest
from faust.transport.drivers.aiokafka import credentials_to_aiokafka_auth

from seqrec.pipeline.errors import BrokerError, ConfigError
from seqrec.pipeline.kafka_security import client_config, faust_credentials, open_client
from seqrec.pipeline.devtools.local_tls import create_secure_files
from seqrec.pipeline.settings import KafkaSecuritySettings, load_settings

SECRET = "s3cret-value-91ab"


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory):
    return create_secure_files(tmp_path_factory.mktemp("tls"))


def test_plaintext_is_the_default_and_adds_nothing() -> None:
    assert client_config(None) == {"security_protocol": "PLAINTEXT"}
    assert faust_credentials(None) is None


@pytest.mark.parametrize("mechanism", ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"])
def test_sasl_ssl_gives_every_library_the_same_login(tls_files, mechanism: str) -> None:
    security = KafkaSecuritySettings(protocol="SASL_SSL", ssl_cafile=tls_files.ca, sasl_mechanism=mechanism,
                                     sasl_username="alice", sasl_password=SECRET)
    config = client_config(security)
    assert config["security_protocol"] == "SASL_SSL" and config["sasl_mechanism"] == mechanism
    assert (config["sasl_plain_username"], config["sasl_plain_password"]) == ("alice", SECRET)
    assert isinstance(config["ssl_context"], ssl.SSLContext) and config["ssl_context"].check_hostname
    credentials = faust_credentials(security)
    assert isinstance(credentials, faust.SASLCredentials)
    faust_auth = credentials_to_aiokafka_auth(credentials)  # what Faust hands aiokafka
    assert faust_auth["security_protocol"] == "SASL_SSL" and faust_auth["sasl_mechanism"] == mechanism
    assert faust_auth["sasl_plain_password"] == SECRET and faust_auth["ssl_context"] is not None
    assert SECRET not in repr(credentials) and SECRET not in repr(security)


def test_sasl_plaintext_has_no_tls() -> None:
    security = KafkaSecuritySettings(protocol="SASL_PLAINTEXT", sasl_username="alice", sasl_password=SECRET)
    assert "ssl_context" not in client_config(security)
    assert credentials_to_aiokafka_auth(faust_credentials(security))["security_protocol"] == "SASL_PLAINTEXT"


def test_mutual_tls_loads_the_client_certificate_and_may_skip_the_hostname(tls_files) -> None:
    # The broker's key store file holds a key and its chain: good enough as a client identity here.
    security = KafkaSecuritySettings(protocol="SSL", ssl_cafile=tls_files.ca, ssl_certfile=tls_files.keystore,
                                     ssl_keyfile=tls_files.keystore, ssl_check_hostname=False)
    config = client_config(security)
    assert config["security_protocol"] == "SSL" and not config["ssl_context"].check_hostname
    assert config["ssl_context"].verify_mode == ssl.CERT_REQUIRED
    credentials = faust_credentials(security)
    assert isinstance(credentials, faust.SSLCredentials)
    assert credentials_to_aiokafka_auth(credentials)["security_protocol"] == "SSL"


def test_the_password_file_is_read_and_its_newline_dropped(tmp_path: Path) -> None:
    path = tmp_path / "password"
    path.write_text(SECRET + "\n")
    security = KafkaSecuritySettings(protocol="SASL_SSL", sasl_username="a", sasl_password_file=path)
    assert client_config(security)["sasl_plain_password"] == SECRET


def test_a_missing_password_file_is_named_not_read(tmp_path: Path) -> None:
    security = KafkaSecuritySettings(protocol="SASL_SSL", sasl_username="a", sasl_password_file=tmp_path / "nope")
    with pytest.raises(BrokerError, match="cannot read the SASL password file .*nope"):
        client_config(security)


@pytest.mark.parametrize(("env", "named"), [
    ({"SEQREC_KAFKA__SECURITY__PROTOCOL": "SASL_SSL", "SEQREC_KAFKA__SECURITY__SASL_PASSWORD": SECRET},
     "needs sasl_username"),
    ({"SEQREC_KAFKA__SECURITY__PROTOCOL": "SASL_SSL", "SEQREC_KAFKA__SECURITY__SASL_USERNAME": "a"},
     "exactly one of sasl_password and sasl_password_file"),
    ({"SEQREC_KAFKA__SECURITY__PROTOCOL": "TLS", "SEQREC_KAFKA__SECURITY__SASL_PASSWORD": SECRET},
     "kafka.security.protocol"),
    ({"SEQREC_KAFKA__SECURITY__SASL_MECHANISM": "SCRAM-SHA-1", "SEQREC_KAFKA__SECURITY__SASL_PASSWORD": SECRET},
     "kafka.security.sasl_mechanism"),
])
def test_bad_settings_are_one_line_without_the_values(monkeypatch: pytest.MonkeyPatch, env: dict[str, str],
                                                      named: str) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError) as caught:
        load_settings()
    message = str(caught.value)
    assert named in message and "\n" not in message and SECRET not in message


def test_the_admin_clients_logged_configuration_hides_the_password(tls_files, caplog: pytest.LogCaptureFixture,
                                                                    unused_port: int) -> None:
    """kafka-python's admin client logs its configuration at DEBUG, password and all."""
    from kafka import KafkaAdminClient

    security = KafkaSecuritySettings(protocol="SASL_PLAINTEXT", sasl_username="a", sasl_password=SECRET)
    caplog.set_level(logging.DEBUG, logger="kafka")
    with pytest.raises(BrokerError, match="the port does not answer"):  # the check refuses before any client
        open_client(KafkaAdminClient, f"127.0.0.1:{unused_port}", security)
    logging.getLogger("kafka.admin.client").debug("Starting KafkaAdminClient with configuration: %s",
                                                 {"sasl_plain_password": SECRET})
    assert SECRET not in caplog.text and "***" in caplog.text


@pytest.fixture
def unused_port() -> int:
    from seqrec.pipeline.devtools.kafka_local import free_port

    return free_port()
