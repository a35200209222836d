"""Why Kafka cannot be reached, in an operator's words: a TCP probe of the bootstrap servers.

aiokafka reports a broker it could not reach as "Unable to bootstrap from [('host', port,
<AddressFamily.AF_INET: 2>)]", without the reason. Only after such a failure, each server is
dialled once (a second at most) to learn it: refused, timed out, name not known.
"""

from __future__ import annotations

import re
import socket

from producer.errors import cannot_connect

PROBE_TIMEOUT_S = 1.0


def split_servers(bootstrap_servers: str) -> list[tuple[str, int]]:
    """`host:port,host:port` as pairs (9092 where no port is given; IPv6 in brackets)."""
    servers = []
    for server in filter(None, (part.strip() for part in bootstrap_servers.split(","))):
        host, colon, port = server.rpartition(":")
        if not colon or not port.isdigit():  # no port, or the end of an IPv6 address
            host, port = server, "9092"
        servers.append((host.strip("[]"), int(port)))
    return servers


# One bootstrap server: a host name, an IPv4 address or a bracketed IPv6 one, and a port.
KAFKA_SERVER = re.compile(r"(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._-]+)(?::(\d{1,5}))?")


def servers_problem(bootstrap_servers: str) -> str | None:
    """What is wrong with `host:port[,host:port…]` as written, or None: a config error now,
    not a Kafka outage after the connect timeout."""
    parts = [part.strip() for part in bootstrap_servers.split(",")]
    if not any(parts):
        return "no server given: host:port[,host:port…]"
    for part in parts:
        if not part:
            return "an empty entry (a stray comma?): host:port[,host:port…]"
        if "://" in part:
            return (
                f"{part!r}: host:port without a scheme (the protocol is --kafka-security-protocol)"
            )
        found = KAFKA_SERVER.fullmatch(part)
        if found is None or not 0 < int(found.group(1) or 9092) < 65536:
            return f"{part!r} is not host:port (IPv6 in brackets: [::1]:9092)"
    return None


def unreachable(bootstrap_servers: str, timeout_s: float = PROBE_TIMEOUT_S) -> str | None:
    """`cannot connect to HOST:PORT: <why>` for the first server that cannot be dialled, or None
    when every one can (the trouble is then not the network)."""
    for host, port in split_servers(bootstrap_servers):
        try:
            with socket.create_connection((host, port), timeout=timeout_s):
                pass
        except OSError as error:
            return cannot_connect(host, port, error)
    return None
