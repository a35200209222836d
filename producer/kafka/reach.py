"""Why Kafka cannot be reached, in an operator's words: a TCP probe of the bootstrap servers.

aiokafka reports a broker it could not reach as "Unable to bootstrap from [('host', port,
<AddressFamily.AF_INET: 2>)]", without the reason. Only after such a failure, each server is
dialled once (a second at most) to learn it: refused, timed out, name not known.
"""

from __future__ import annotations

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
