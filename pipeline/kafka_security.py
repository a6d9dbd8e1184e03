"""One place that turns `KafkaSecuritySettings` into what each Kafka client library takes, and
that names the cause when a secured connection fails.

- `client_config(security)`: keyword arguments for kafka-python's KafkaProducer/KafkaConsumer/
  KafkaAdminClient; aiokafka's clients take the very same names.
- `faust_credentials(security)`: Faust's `broker_credentials` (Faust's `kafka://` URLs stay as
  they are; the credentials carry the protocol).
- `open_client(factory, bootstrap, security, **config)`: a kafka-python client, or a
  `BrokerError` of one line that says why not ("authentication failed", "certificate not
  trusted", "the broker wants TLS") and never holds the password.
"""

from __future__ import annotations

import logging
import socket
import ssl
import struct
from collections.abc import Callable
from typing import Any, TypeVar

from seqrec.pipeline.errors import BrokerError
from seqrec.pipeline.settings import KafkaSecuritySettings

T = TypeVar("T")
PLAINTEXT = KafkaSecuritySettings()
PROBE_TIMEOUT_S = 5.0
DEFAULT_PORT = 9092


def sasl_password(security: KafkaSecuritySettings) -> str:
    """The password, from the settings or its file; raises BrokerError naming the file, not its content."""
    if security.sasl_password is not None:
        return security.sasl_password.get_secret_value()
    if security.sasl_password_file is None:  # the settings' validator rules this out
        raise BrokerError("no SASL password is configured")
    try:
        return security.sasl_password_file.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise BrokerError(f"cannot read the SASL password file {security.sasl_password_file}: {exc.strerror}") from None


def ssl_context(security: KafkaSecuritySettings) -> ssl.SSLContext | None:
    """The TLS context of SSL and SASL_SSL (None for the others): the CA file or the system's
    CAs, hostname checking as configured, the client certificate for mutual TLS."""
    if not security.uses_tls:
        return None
    try:
        context = ssl.create_default_context(cafile=str(security.ssl_cafile) if security.ssl_cafile else None)
        context.check_hostname = security.ssl_check_hostname
        if security.ssl_certfile is not None:
            context.load_cert_chain(str(security.ssl_certfile), str(security.ssl_keyfile))
    except (OSError, ssl.SSLError) as exc:
        raise BrokerError(f"cannot load the TLS files ({security.ssl_cafile or 'system CAs'}, "
                          f"{security.ssl_certfile or 'no client certificate'}): {exc}") from None
    return context


def client_config(security: KafkaSecuritySettings | None) -> dict[str, Any]:
    """kafka-python (and aiokafka) client keyword arguments for `security`."""
    security = security or PLAINTEXT
    config: dict[str, Any] = {"security_protocol": security.protocol}
    context = ssl_context(security)
    if context is not None:
        config["ssl_context"] = context
    if security.uses_sasl:
        config.update(sasl_mechanism=security.sasl_mechanism, sasl_plain_username=security.sasl_username,
                      sasl_plain_password=sasl_password(security))
    return config


def faust_credentials(security: KafkaSecuritySettings | None) -> Any:
    """Faust's `broker_credentials`: None (PLAINTEXT), SSLCredentials or SASLCredentials."""
    import faust

    security = security or PLAINTEXT
    context = ssl_context(security)
    if security.uses_sasl:  # an ssl_context makes Faust use SASL_SSL, none SASL_PLAINTEXT
        return faust.SASLCredentials(username=security.sasl_username, password=sasl_password(security),
                                     ssl_context=context, mechanism=security.sasl_mechanism)
    if context is not None:
        return faust.SSLCredentials(context)
    return None


# ---- failing fast, with the cause ------------------------------------------------------------------

RECONNECT_BACKOFF_MAX_MS = 1000


def open_client(factory: Callable[..., T], bootstrap: str, security: KafkaSecuritySettings | None,
                **config: Any) -> T:
    """`factory(bootstrap_servers=..., **security, **config)` once `check_connection` passed.
    kafka-python would retry a refused handshake for 30 s and then say only that it could not
    bootstrap; the check names the cause within seconds."""
    from kafka.errors import KafkaError

    security = security or PLAINTEXT
    _redact_logged_configuration()
    check_connection(bootstrap, security)
    # kafka-python doubles its reconnect wait up to 30 s: after a broker outage of 20 s its next
    # try could come 25 s after the broker was back, and clicks a producer held for that long (or
    # answers a consumer did not fetch) looked like a worker that could not catch up (27-51 s,
    # docs/reliability.md). One second between tries costs nothing against one broker.
    config = {"reconnect_backoff_max_ms": RECONNECT_BACKOFF_MAX_MS, **config}
    try:
        return factory(bootstrap_servers=bootstrap, **client_config(security), **config)
    except KafkaError as exc:
        raise BrokerError(f"cannot connect to Kafka at {bootstrap} ({security.protocol}): "
                          f"{_scrub(str(exc), security)}") from None


class _RedactPassword(logging.Filter):
    """kafka-python's admin client logs its whole configuration at DEBUG, password included."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, dict) and record.args.get("sasl_plain_password"):
            record.args = {**record.args, "sasl_plain_password": "***"}
        return True


def _redact_logged_configuration() -> None:
    logger = logging.getLogger("kafka.admin.client")
    if not any(isinstance(f, _RedactPassword) for f in logger.filters):
        logger.addFilter(_RedactPassword())


def check_connection(bootstrap: str, security: KafkaSecuritySettings) -> None:
    """Raise a one-line BrokerError when no bootstrap address accepts `security`, naming the
    first one's cause: the port is closed, its certificate is not trusted, it wants TLS, or the
    SASL login fails. Speaks just enough of the Kafka protocol itself (well under a second)."""
    causes = []
    for address in (a.strip() for a in bootstrap.split(",") if a.strip()):
        host, _, port = address.rpartition(":")
        if not (host and port.isdigit()):  # no port: Kafka's default, as kafka-python assumes
            host, port = address, str(DEFAULT_PORT)
        cause = _probe(host.strip("[]"), int(port), security)
        if cause is None:
            return
        causes.append(cause)
    raise BrokerError(f"cannot connect to Kafka at {bootstrap} ({security.protocol}): "
                      f"{causes[0] if causes else 'no address given'}")


def _probe(host: str, port: int, security: KafkaSecuritySettings) -> str | None:
    """The cause of a refused connection, or None when TCP, TLS and the SASL login all work."""
    try:
        sock = socket.create_connection((host, port), timeout=PROBE_TIMEOUT_S)
    except OSError as exc:
        return f"the port does not answer ({exc.strerror or exc})"
    with sock:
        context = ssl_context(security)
        if context is None:
            try:
                _exchange(sock, _API_VERSIONS, 0, b"")
            except (OSError, ValueError):
                return _plaintext_refused(host, port)
            return _sasl_refusal(sock, host, security) if security.uses_sasl else None
        try:
            channel = context.wrap_socket(sock, server_hostname=host)
        except ssl.SSLCertVerificationError as exc:
            return f"certificate not trusted ({exc.verify_message})"
        except (ssl.SSLError, OSError) as exc:
            return f"TLS handshake failed, is this a TLS port? ({exc.__class__.__name__})"
        with channel:
            return _sasl_refusal(channel, host, security) if security.uses_sasl else None


_API_VERSIONS, _SASL_HANDSHAKE, _SASL_AUTHENTICATE = 18, 17, 36
_CLIENT_ID = b"seqrec-probe"


def _exchange(sock: socket.socket, api_key: int, version: int, body: bytes) -> bytes:
    """One Kafka request (header v1) and its response body; ValueError if the reply is not one."""
    correlation_id = 0x5EC0 + api_key
    request = struct.pack(">hhih", api_key, version, correlation_id, len(_CLIENT_ID)) + _CLIENT_ID + body
    sock.sendall(struct.pack(">i", len(request)) + request)
    size, answered_id = struct.unpack(">ii", _read(sock, 8))
    if answered_id != correlation_id or not 4 <= size <= 1 << 20:
        raise ValueError("not a Kafka response")  # e.g. a TLS alert
    return _read(sock, size - 4)


def _read(sock: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise ConnectionError("closed by the broker")
        data += chunk
    return data


def _sasl_refusal(sock: socket.socket, host: str, security: KafkaSecuritySettings) -> str | None:
    """Log in with kafka-python's own SASL mechanism; the cause of a refusal, or None."""
    from kafka.net.sasl import get_sasl_mechanism

    mechanism_name = security.sasl_mechanism.encode()
    refused = f"authentication failed for user {security.sasl_username!r} ({security.sasl_mechanism})"
    try:
        reply = _exchange(sock, _SASL_HANDSHAKE, 1, struct.pack(">h", len(mechanism_name)) + mechanism_name)
        if struct.unpack(">h", reply[:2])[0] != 0:
            return f"the broker does not offer SASL mechanism {security.sasl_mechanism}"
        mechanism = get_sasl_mechanism(security.sasl_mechanism)(host=host, **client_config(security))
        while not mechanism.is_done():
            token = mechanism.auth_bytes()
            reply = _exchange(sock, _SASL_AUTHENTICATE, 0, struct.pack(">i", len(token)) + token)
            error_code, message_len = struct.unpack(">hh", reply[:4])
            if error_code != 0:
                return refused
            offset = 4 + max(message_len, 0)
            (token_len,) = struct.unpack(">i", reply[offset:offset + 4])
            mechanism.receive(reply[offset + 4:offset + 4 + token_len])
    except (OSError, ValueError, struct.error):  # kafka-python's SCRAM raises ValueError on a bad signature
        return refused  # the broker closes the connection on a wrong password (after a short delay)
    return None


def _plaintext_refused(host: str, port: int) -> str:
    """A plain Kafka request went unanswered: say so, and whether the port speaks TLS instead."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # only asking whether TLS is spoken, nothing is sent
    try:
        with socket.create_connection((host, port), timeout=PROBE_TIMEOUT_S) as sock:
            with context.wrap_socket(sock, server_hostname=host):
                return "the broker wants TLS on this port (set protocol SSL or SASL_SSL)"
    except (ssl.SSLError, OSError):
        return "the broker does not answer Kafka requests on this port"


def _scrub(text: str, security: KafkaSecuritySettings) -> str:
    """`text` with the password replaced, should a library have put it there."""
    if not security.uses_sasl:
        return text
    try:
        secret = sasl_password(security)
    except BrokerError:
        return text
    return text.replace(secret, "***") if secret else text


__all__ = ["check_connection", "client_config", "faust_credentials", "open_client", "sasl_password", "ssl_context"]
