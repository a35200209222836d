"""The one exception tree of the puller; each class says what the operator must do.

Only the CLI catches these: it prints `str(error)` on one line and exits with `exit_code`.
Messages never contain the credentials token.
"""

from __future__ import annotations

import errno
import socket
import ssl
from typing import ClassVar


class PullError(Exception):
    """Root of every failure the puller reports to its operator."""

    exit_code: ClassVar[int] = 1
    kind: ClassVar[str] = "error"


class InternalError(PullError):
    """Something the puller did not expect: a bug. The message ends with a plea to report it."""

    exit_code = 1
    kind = "internal"


class ConfigError(PullError):
    """Bad usage or configuration: fix the command line, environment or partners file."""

    exit_code = 2
    kind = "config"


class PartnerAuthError(PullError):
    """The partner refused us (401/403) or the endpoint does not exist (404): fix token/URL."""

    exit_code = 3
    kind = "partner_auth"


class PartnerNotFoundError(PartnerAuthError):
    """The endpoint does not exist (HTTP 404, or a module the partner does not list): fix the
    URL or the module."""

    kind = "partner_not_found"


class VersionNotOfferedError(PartnerAuthError):
    """The partner does not offer the OCPI version asked for (or none we speak)."""

    kind = "version_not_offered"


class PartnerUnavailableError(PullError):
    """The partner could not be reached or kept failing after every retry: try again later."""

    exit_code = 4
    kind = "partner_unavailable"


class PartnerTlsError(PartnerUnavailableError):
    """The partner's TLS certificate is not trusted: give --ca-bundle or fix the certificate.

    Not retried: verification fails the same way every time."""

    kind = "partner_tls"


class IncompletePullError(PullError):
    """The pull ended without every object: the summary says what is missing; resume or re-run."""

    exit_code = 5
    kind = "incomplete"


class WarningFailure(PullError):
    """The pull is complete, but it reported a warning the operator named in `--fail-on`."""

    exit_code = 5
    kind = "warning"


class PartnerProtocolError(PullError):
    """The partner answered with something that is not OCPI (bad JSON, envelope, headers)."""

    exit_code = 5
    kind = "partner_protocol"


class PaginationLoop(PartnerProtocolError):
    """The partner's pagination does not converge (link loop, endless empty pages, a window that
    keeps shrinking): raised by the pure walk, so `reason` is one of a fixed set."""

    kind = "pagination_loop"

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason


class UnsafeLinkError(PullError):
    """A next link pointed somewhere the credentials token must not go; it was not followed."""

    exit_code = 5
    kind = "unsafe_link"


class KafkaUnavailableError(PullError):
    """Kafka did not acknowledge within the deadline; the checkpoint allows a resume."""

    exit_code = 6
    kind = "kafka_unavailable"


class KafkaLostWritesError(KafkaUnavailableError):
    """Kafka no longer holds writes it acknowledged, and writing them again did not make it
    keep them: the pull is not complete, whatever the windows said."""

    kind = "kafka_lost_writes"


class KafkaAuthError(PullError):
    """Kafka refused who we are or what we asked: a wrong SASL user, password or mechanism, or a
    missing ACL (the message names the permission). Not retried: it fails the same way again."""

    exit_code = 6
    kind = "kafka_auth"


class KafkaTlsError(PullError):
    """TLS with Kafka failed: a broker certificate not trusted (give --kafka-ca-file), a TLS
    listener spoken to in plaintext or the reverse, a client certificate missing or refused."""

    exit_code = 6
    kind = "kafka_tls"


class FencedError(PullError):
    """Another process took over this pull's shard (same --pull-id and shard, exactly-once):
    this one stops at once, keeping nothing uncommitted; the newer process carries on."""

    exit_code = 6
    kind = "fenced"


class InterruptedPullError(PullError):
    """Stopped by a signal; the checkpoint allows a resume with the same --pull-id."""

    exit_code = 130
    kind = "interrupted"


# How a failed connection reads, whatever library raised it (errno, or the exception's class).
_CONNECT_ERRNOS = {
    errno.ECONNREFUSED: "connection refused",
    errno.ETIMEDOUT: "timed out",
    errno.ECONNRESET: "connection reset",
    errno.EHOSTUNREACH: "host unreachable",
    errno.ENETUNREACH: "network unreachable",
    errno.ECONNABORTED: "connection aborted",
    errno.EPIPE: "connection closed",
}


def connect_failure(error: BaseException | None) -> str:
    """Why a connection failed, in an operator's words: `connection refused`, `timed out`,
    `name not known`, … (never a library's class name). Looks through the exception's causes
    and the `os_error` aiohttp wraps."""
    seen: set[int] = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if isinstance(error, socket.gaierror):
            return "name not known"
        if isinstance(error, TimeoutError):
            return "timed out"
        if isinstance(error, ssl.SSLError):
            return "TLS handshake failed"
        if isinstance(error, OSError) and error.errno in _CONNECT_ERRNOS:
            return _CONNECT_ERRNOS[error.errno]
        inner = getattr(error, "os_error", None)
        error = inner if isinstance(inner, BaseException) else error.__cause__ or error.__context__
    return "connection failed"


def cannot_connect(host: str | None, port: int | None, error: BaseException | None) -> str:
    """`cannot connect to HOST:PORT: <why>` (see `connect_failure`)."""
    where = host if port is None else f"{host}:{port}"
    return f"cannot connect to {where}: {connect_failure(error)}"
