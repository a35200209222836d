"""Why a Kafka client could not start: a refused login, an untrusted certificate, a listener
spoken to in the wrong protocol, a missing ACL.

aiokafka hides all of these behind "Unable to bootstrap" (and then keeps trying, as it does for
a broker that is not up yet). When a client fails to start, `diagnose` opens one connection of
its own with the same settings and asks for metadata; what breaks tells which it is. Auth and
TLS failures are final (the same settings fail the same way), so the caller stops waiting and
reports them at once. `refusal` turns an authorization error of a request into the same kind of
report, naming the permission that is missing. No message carries the SASL password.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from typing import Any

from aiokafka import errors as kafka_errors
from aiokafka.conn import create_conn
from aiokafka.protocol.metadata import MetadataRequest

from producer.errors import KafkaAuthError, KafkaTlsError, PullError
from producer.kafka.connection import KafkaConnection

PROBE_TIMEOUT_S = 10.0
DOCS = "docs/deployment.md lists the ACLs the puller needs"


def _hosts(bootstrap_servers: str) -> list[tuple[str, int]]:
    hosts = []
    for entry in bootstrap_servers.split(","):
        host, _, port = entry.strip().rpartition(":")
        if host and port.isdigit():
            hosts.append((host.strip("[]"), int(port)))
    return hosts


def who(connection: KafkaConnection) -> str:
    if connection.security_protocol.startswith("SASL"):
        return f"user {connection.sasl_username!r} ({connection.sasl_mechanism or 'PLAIN'})"
    if connection.ssl_certfile is not None:
        return "the client certificate"
    return "an anonymous client"


async def diagnose(connection: KafkaConnection) -> PullError | None:
    """An auth or TLS error explaining why clients with these settings cannot start, or None
    (the broker is only unreachable or not ready: worth waiting for)."""
    for host, port in _hosts(connection.bootstrap_servers):
        found = await _probe(connection, host, port)
        if found is not None:
            return found
    return None


async def _probe(connection: KafkaConnection, host: str, port: int) -> PullError | None:
    where = f"Kafka at {host}:{port}"
    options: dict[str, Any] = connection.client_options()
    options.pop("bootstrap_servers")
    protocol = connection.security_protocol
    tls = protocol in ("SSL", "SASL_SSL")
    conn = None
    try:
        async with asyncio.timeout(PROBE_TIMEOUT_S):
            conn = await create_conn(host, port, **options)
            await conn.send(MetadataRequest[0]([]))
        return None
    except ssl.SSLCertVerificationError as error:
        return KafkaTlsError(
            f"{where}: its TLS certificate is not trusted ({error.verify_message}); give the CA "
            "that signed it with --kafka-ca-file"
        )
    except ssl.SSLError as error:
        return KafkaTlsError(
            f"{where}: the TLS handshake failed ({error.reason or type(error).__name__}); is it "
            "a TLS listener? (--kafka-security-protocol)"
        )
    except (kafka_errors.SaslAuthenticationFailed, kafka_errors.AuthenticationFailedError):
        return KafkaAuthError(
            f"{where} refused the login of {who(connection)}: wrong user name or password "
            "(--kafka-sasl-username, --kafka-sasl-password)"
        )
    except (
        kafka_errors.UnsupportedSaslMechanismError,
        kafka_errors.AuthenticationMethodNotSupported,
    ):
        return KafkaAuthError(
            f"{where} does not accept SASL mechanism {connection.sasl_mechanism or 'PLAIN'} "
            "(--kafka-sasl-mechanism)"
        )
    except kafka_errors.IllegalSaslStateError:
        return KafkaAuthError(
            f"{where} did not expect a SASL login: it is not a SASL listener "
            "(--kafka-security-protocol)"
        )
    except (OSError, kafka_errors.KafkaError, TimeoutError):
        if not await _accepts_tcp(host, port):
            return None  # not up (yet): worth waiting for
    finally:
        if conn is not None:
            conn.close()
    # Connected, then dropped: the listener wants something else from us.
    if not tls and await _speaks_tls(host, port):
        return KafkaTlsError(
            f"{where} speaks TLS: use --kafka-security-protocol SSL or SASL_SSL "
            f"(not {protocol}) and --kafka-ca-file"
        )
    if tls and connection.ssl_certfile is None:
        return KafkaTlsError(
            f"{where} closed the TLS connection: it may require a client certificate "
            "(--kafka-ssl-certfile, --kafka-ssl-keyfile) or not be a TLS listener"
        )
    if tls:
        return KafkaTlsError(
            f"{where} closed the TLS connection: does it trust the CA of the client certificate?"
        )
    return KafkaAuthError(
        f"{where} closed the connection of {who(connection)}: does the listener require SASL "
        f"or TLS? (--kafka-security-protocol is {protocol})"
    )


async def _accepts_tcp(host: str, port: int) -> bool:
    try:
        async with asyncio.timeout(PROBE_TIMEOUT_S):
            _, writer = await asyncio.open_connection(host, port)
    except (OSError, TimeoutError):
        return False
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return True


async def _speaks_tls(host: str, port: int) -> bool:
    """Whether a TLS handshake (no verification: only the protocol is in question) completes."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    try:
        async with asyncio.timeout(PROBE_TIMEOUT_S):
            _, writer = await asyncio.open_connection(host, port, ssl=context)
    except (OSError, TimeoutError):
        return False
    writer.close()
    with contextlib.suppress(OSError, ssl.SSLError):
        await writer.wait_closed()
    return True


def permission_for(what: str) -> str:
    """The permission an action needs: "produce to t" → WRITE on topic t, and so on."""
    for verb, permission in (("produce to ", "WRITE"), ("metadata of ", "DESCRIBE")):
        if what.startswith(verb):
            return f"{permission} on topic {what.removeprefix(verb)}"
    if what == "create topics":
        return "CREATE on the topics (or the cluster)"
    return f"the permission to {what}"


def refusal(
    error: BaseException, connection: KafkaConnection | None, what: str
) -> KafkaAuthError | None:
    """A KafkaAuthError naming the missing permission if `error` is an authorization refusal
    of `what` ("WRITE on topic x"), else None."""
    if isinstance(error, kafka_errors.TransactionalIdAuthorizationFailed):
        missing = what
    elif isinstance(error, kafka_errors.ClusterAuthorizationFailedError):
        missing = "IDEMPOTENT_WRITE on the cluster (or WRITE on the topics)"
    elif isinstance(error, kafka_errors.GroupAuthorizationFailedError):
        missing = "READ on the consumer group"
    elif isinstance(error, kafka_errors.TopicAuthorizationFailedError):
        missing = what
    else:
        return None
    if connection is None:
        return KafkaAuthError(f"Kafka refused this client: it lacks {missing} ({DOCS})")
    return KafkaAuthError(
        f"Kafka at {connection.bootstrap_servers} refused {who(connection)}: it lacks {missing} "
        f"({DOCS})"
    )
