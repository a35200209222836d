"""How to reach Kafka: bootstrap servers, security protocol, SASL, TLS. A value, no I/O."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from aiokafka.helpers import create_ssl_context
from pydantic import SecretStr

SecurityProtocol = Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]
SaslMechanism = Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]


@dataclass(frozen=True, slots=True)
class KafkaConnection:
    """Where Kafka is and how to authenticate (the same for producer, consumers, admin)."""

    bootstrap_servers: str
    security_protocol: SecurityProtocol = "PLAINTEXT"
    sasl_mechanism: SaslMechanism | None = None
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None
    ssl_cafile: Path | None = None
    ssl_certfile: Path | None = None  # mutual TLS: this client's certificate (PEM) ...
    ssl_keyfile: Path | None = None  # ... and its private key (PEM, unencrypted)

    def client_options(self) -> dict[str, Any]:
        """Keyword arguments for any aiokafka client."""
        options: dict[str, Any] = {
            "bootstrap_servers": self.bootstrap_servers,
            "security_protocol": self.security_protocol,
        }
        if self.security_protocol in ("SSL", "SASL_SSL"):
            options["ssl_context"] = create_ssl_context(
                cafile=_text(self.ssl_cafile),
                certfile=_text(self.ssl_certfile),
                keyfile=_text(self.ssl_keyfile),
            )
        if self.security_protocol.startswith("SASL"):
            options["sasl_mechanism"] = self.sasl_mechanism or "PLAIN"
            options["sasl_plain_username"] = self.sasl_username
            options["sasl_plain_password"] = (
                None if self.sasl_password is None else self.sasl_password.get_secret_value()
            )
        return options


def _text(path: Path | None) -> str | None:
    return None if path is None else str(path)


def as_connection(connection: KafkaConnection | str) -> KafkaConnection:
    """A connection from a value or from plain bootstrap servers."""
    return connection if isinstance(connection, KafkaConnection) else KafkaConnection(connection)
