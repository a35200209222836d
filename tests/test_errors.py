"""A failed connection in an operator's words, whatever library raised it (pure)."""

from __future__ import annotations

import errno
import socket
import ssl

import aiohttp
import pytest
from aiohttp.client_reqrep import ConnectionKey

from producer.errors import cannot_connect, connect_failure

KEY = ConnectionKey("p.example", 443, True, True, None, None, None)


@pytest.mark.parametrize(
    ("error", "words"),
    [
        (ConnectionRefusedError(errno.ECONNREFUSED, "Connect call failed"), "connection refused"),
        (socket.gaierror(-2, "Name or service not known"), "name not known"),
        (TimeoutError(), "timed out"),
        (OSError(errno.EHOSTUNREACH, "No route to host"), "host unreachable"),
        (OSError(errno.ECONNRESET, "reset"), "connection reset"),
        (ssl.SSLError("handshake"), "TLS handshake failed"),
        # aiohttp wraps the OS error; its class name never shows.
        (
            aiohttp.ClientConnectorError(KEY, ConnectionRefusedError(errno.ECONNREFUSED, "x")),
            "connection refused",
        ),
        (aiohttp.ClientConnectorDNSError(KEY, socket.gaierror(-2, "x")), "name not known"),
        (RuntimeError("something"), "connection failed"),
        (None, "connection failed"),
    ],
)  # fmt: skip
def test_connect_failures_read_as_what_happened(error: BaseException | None, words: str) -> None:
    assert connect_failure(error) == words


def test_a_cause_is_looked_through() -> None:
    outer = RuntimeError("Unable to bootstrap")
    outer.__cause__ = ConnectionRefusedError(errno.ECONNREFUSED, "refused")
    assert cannot_connect("127.0.0.1", 9092, outer) == (
        "cannot connect to 127.0.0.1:9092: connection refused"
    )
