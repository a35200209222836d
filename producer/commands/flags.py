"""Flag groups of the operator commands (the CLI registers them; pull's own groups stay in cli.py).

Flag names are PullSettings' field names, so a flag and its `OCPI_PULLER_*` variable mean the same
for every command.
"""

from __future__ import annotations

import argparse
import os
from typing import get_args

from producer.ocpi.modules import MODULES, OcpiVersion

Group = argparse._ArgumentGroup


def kafka_connection_flags(k: Group) -> None:
    """Where Kafka is and how to log in: the same flags and variables as `pull`'s."""
    k.add_argument(
        "--bootstrap-servers",
        help="Kafka bootstrap servers (OCPI_PULLER_BOOTSTRAP_SERVERS, KAFKA_BOOTSTRAP_SERVERS; "
        "default localhost:9092)",
    )
    k.add_argument("--topic-prefix", help="topics are <prefix>.<module> etc. (default ocpi)")
    k.add_argument(
        "--kafka-security-protocol", choices=("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
    )
    k.add_argument("--kafka-sasl-mechanism", choices=("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"))
    k.add_argument("--kafka-sasl-username")
    k.add_argument("--kafka-sasl-password", help="better: OCPI_PULLER_KAFKA_SASL_PASSWORD")
    k.add_argument("--kafka-ssl-cafile", help="CA certificates to verify the brokers with")


def command_output_flags(o: Group) -> None:
    """`--output` and `--log-level`."""
    o.add_argument("--output", choices=("text", "json"), help="text (default) or one JSON line")
    o.add_argument(
        "--log-level",
        default=os.environ.get("OCPI_PULLER_LOG_LEVEL", "INFO").upper(),
        choices=("DEBUG", "INFO", "WARNING", "ERROR"),
    )


def discover_partner_flags(s: Group) -> None:
    """The partner's versions URL and how to talk to it."""
    s.add_argument("--url", help="the partner's versions URL")
    s.add_argument("--token", help="credentials token (better: OCPI_PULLER_TOKEN)")
    s.add_argument(
        "--ocpi-version",
        choices=get_args(OcpiVersion),
        help="the version to use (default: the newest offered that we speak)",
    )
    s.add_argument("--token-encoding", choices=("base64", "plain", "auto"))
    s.add_argument("--request-timeout-s", type=float)
    s.add_argument("--max-attempts", type=int)
    s.add_argument("--ca-bundle", help="CA certificates to verify the partner's TLS with")
    s.add_argument("--insecure-skip-tls-verify", action="store_true", default=None)


def verify_flags(v: Group) -> None:
    """Which pull to verify, and whether against the partner."""
    v.add_argument("--pull-id", help="the pull to verify (OCPI_PULLER_PULL_ID)")
    v.add_argument(
        "--against-partner",
        action="store_true",
        help="list the partner's keys again and compare (needs the pull's --url/--token or "
        "--partners)",
    )


def listing_flags(s: Group) -> None:
    """How `verify --against-partner` lists the partner's keys."""
    s.add_argument("--limit", type=int, help="page size asked for (the partner may cap it)")
    s.add_argument("--concurrency", type=int, help="requests in flight (default 4)")
    s.add_argument("--rate-limit", type=float, help="requests per second to the partner")
    s.add_argument("--request-timeout-s", type=float)
    s.add_argument("--max-attempts", type=int)
    s.add_argument("--ca-bundle", help="CA certificates to verify the partner's TLS with")
    s.add_argument("--insecure-skip-tls-verify", action="store_true", default=None)


def reset_flags(r: Group) -> None:
    """Which pull (and which of its partner modules) to reset; the confirmation."""
    r.add_argument("--pull-id", help="the pull to reset (OCPI_PULLER_PULL_ID)")
    r.add_argument("--partner", help="only this partner's records of the pull")
    r.add_argument("--module", choices=MODULES, help="only this module's records of the pull")
    r.add_argument("--yes", action="store_true", help="do it (required when stdin is a terminal)")
