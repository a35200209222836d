"""Throw-away TLS material for a test broker: a CA, a broker certificate for 127.0.0.1 and
localhost, a client certificate for mutual TLS, and a second CA nobody trusts.

Written as PEM files; the private keys are unencrypted PKCS#8, which is what Kafka's PEM key
store (KIP-651) reads without a password.
"""

from __future__ import annotations

import datetime
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CLIENT_COMMON_NAME = "ocpi-puller"
BROKER_COMMON_NAME = "localhost"


@dataclass(frozen=True, slots=True)
class TlsFiles:
    """Where the PEM files are."""

    ca_cert: Path
    broker_cert: Path  # the broker's certificate chain (leaf, then the CA)
    broker_key: Path
    client_cert: Path
    client_key: Path
    other_ca_cert: Path  # a CA that signed nothing here: verification against it must fail


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "ocpi-puller tests"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _cert_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _make_ca(common_name: str) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(_name(common_name))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return cert, key


def _issue(
    ca: x509.Certificate,
    ca_key: ec.EllipticCurvePrivateKey,
    common_name: str,
    *,
    server: bool,
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH]
            ),
            critical=False,
        )
    )
    if server:
        builder = builder.add_extension(
            x509.SubjectAlternativeName(
                [
                    x509.DNSName("localhost"),
                    x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                ]
            ),
            critical=False,
        )
    return builder.sign(ca_key, hashes.SHA256()), key


def make_tls_files(folder: Path) -> TlsFiles:
    """A fresh CA, broker and client certificates (and an unrelated CA) under `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    ca, ca_key = _make_ca("ocpi-puller test CA")
    broker, broker_key = _issue(ca, ca_key, BROKER_COMMON_NAME, server=True)
    client, client_key = _issue(ca, ca_key, CLIENT_COMMON_NAME, server=False)
    other_ca, _ = _make_ca("a CA nobody trusts")
    files = TlsFiles(
        ca_cert=folder / "ca.pem",
        broker_cert=folder / "broker.pem",
        broker_key=folder / "broker-key.pem",
        client_cert=folder / "client.pem",
        client_key=folder / "client-key.pem",
        other_ca_cert=folder / "other-ca.pem",
    )
    files.ca_cert.write_bytes(_cert_pem(ca))
    files.broker_cert.write_bytes(_cert_pem(broker) + _cert_pem(ca))
    files.broker_key.write_bytes(_key_pem(broker_key))
    files.client_cert.write_bytes(_cert_pem(client))
    files.client_key.write_bytes(_key_pem(client_key))
    files.other_ca_cert.write_bytes(_cert_pem(other_ca))
    for key_file in (files.broker_key, files.client_key):
        key_file.chmod(0o600)
    return files
