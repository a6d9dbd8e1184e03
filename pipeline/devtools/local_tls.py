"""TLS material and a SCRAM user for the local broker's SASL_SSL listener (`seqrec kafka start
--secure`): a CA and a broker certificate made for this data directory with `cryptography`, and a
random password in a file only the owner can read. Development only: a real cluster's CA signs
its brokers' certificates and its operators create the users.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

USERNAME = "seqrec"
MECHANISM = "SCRAM-SHA-512"
_VALIDITY = dt.timedelta(days=365)


@dataclass(frozen=True)
class SecureFiles:
    """Where the secured listener's files live, inside the broker's data directory."""

    root: Path

    @property
    def ca(self) -> Path:
        return self.root / "ca.pem"

    @property
    def keystore(self) -> Path:
        """The broker's private key, then its certificate chain (Kafka's file-based PEM key store)."""
        return self.root / "broker-keystore.pem"

    @property
    def password_file(self) -> Path:
        return self.root / "client.password"

    def exists(self) -> bool:
        return all(p.is_file() for p in (self.ca, self.keystore, self.password_file))

    def password(self) -> str:
        return self.password_file.read_text(encoding="utf-8").strip()


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _write_private(path: Path, data: bytes) -> None:
    """Create `path` readable by its owner only, from the first byte on."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)


def create_secure_files(root: Path) -> SecureFiles:
    """A new CA, a broker certificate it signs (SAN 127.0.0.1 and localhost) and a password."""
    root.mkdir(parents=True, exist_ok=True)
    files = SecureFiles(root)
    now = dt.datetime.now(dt.timezone.utc)
    ca_key, broker_key = _key(), _key()
    ca_cert = (
        x509.CertificateBuilder().subject_name(_name("seqrec local CA")).issuer_name(_name("seqrec local CA"))
        .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + _VALIDITY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True, content_commitment=False,
                                     key_encipherment=False, data_encipherment=False, key_agreement=False,
                                     encipher_only=False, decipher_only=False), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    broker_cert = (
        x509.CertificateBuilder().subject_name(_name("localhost")).issuer_name(ca_cert.subject)
        .public_key(broker_key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + _VALIDITY)
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                                    x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    files.ca.write_bytes(ca_cert.public_bytes(pem))
    # Kafka's PEM key store reads a PKCS#8 key; unencrypted, so the file's 0600 mode protects it.
    key = broker_key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    _write_private(files.keystore, key + broker_cert.public_bytes(pem) + ca_cert.public_bytes(pem))
    _write_private(files.password_file, (secrets.token_urlsafe(24) + "\n").encode())
    return files


def secure_listener_properties(files: SecureFiles) -> dict[str, str]:
    """server.properties entries of the SASL_SSL listener (the listener address is added by the caller)."""
    return {
        "sasl.enabled.mechanisms": MECHANISM,
        f"listener.name.sasl_ssl.{MECHANISM.lower()}.sasl.jaas.config":
            "org.apache.kafka.common.security.scram.ScramLoginModule required;",
        "ssl.keystore.type": "PEM",
        "ssl.keystore.location": str(files.keystore),
    }


def client_environment(bootstrap: str, files: SecureFiles) -> dict[str, str]:
    """The environment a client needs to reach the secured listener; no password, only its file."""
    return {
        "SEQREC_KAFKA__BOOTSTRAP_SERVERS": bootstrap,
        "SEQREC_KAFKA__SECURITY__PROTOCOL": "SASL_SSL",
        "SEQREC_KAFKA__SECURITY__SASL_MECHANISM": MECHANISM,
        "SEQREC_KAFKA__SECURITY__SASL_USERNAME": USERNAME,
        "SEQREC_KAFKA__SECURITY__SASL_PASSWORD_FILE": str(files.password_file),
        "SEQREC_KAFKA__SECURITY__SSL_CAFILE": str(files.ca),
    }


__all__ = ["MECHANISM", "USERNAME", "SecureFiles", "client_environment", "create_secure_files",
           "secure_listener_properties"]
