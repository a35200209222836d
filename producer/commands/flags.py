"""Flag groups of the operator commands. Flags that are settings of `pull` are declared the same
way as there (`producer.flags.add_flag`): same names, same variables, help with their default."""

from __future__ import annotations

import argparse
from typing import get_args

from producer.flags import add_flag, add_kafka_security_flags, add_setting_flag, concurrency_value
from producer.ocpi.protocol.modules import MODULES, OcpiVersion
from schemas.validation import VALIDATION_MODES

Group = argparse._ArgumentGroup


def kafka_connection_flags(p: argparse.ArgumentParser) -> None:
    """Where Kafka is and how to log in: the same flags and variables as `pull`'s."""
    k = p.add_argument_group("kafka")
    add_flag(k, "--bootstrap-servers", "Kafka bootstrap servers")
    add_flag(k, "--topic-prefix", "topics are <prefix>.<module>, <prefix>.progress, …")
    add_kafka_security_flags(k)


def command_output_flags(p: argparse.ArgumentParser) -> None:
    """`--output` and `--log-level`."""
    o = p.add_argument_group("output")
    add_flag(o, "--output", "text for people, json for one line", choices=("text", "json"))
    add_setting_flag(o, "log_level")


def _partner_connection(s: Group) -> None:
    add_flag(s, "--request-timeout-s", "seconds one partner request may take", type=float)
    add_flag(s, "--max-attempts", "attempts before the partner counts as down", type=int)
    add_flag(s, "--ca-bundle", "CA certificates to verify the partner's TLS with")
    add_flag(s, "--insecure-skip-tls-verify", "do not verify the partner's certificate (loud)",
             action="store_true")  # fmt: skip


def discover_partner_flags(p: argparse.ArgumentParser) -> None:
    """The partner's versions URL and how to talk to it."""
    s = p.add_argument_group("partner")
    add_flag(s, "--url", "the partner's versions URL")
    add_flag(s, "--token", "the credentials token (prefer the environment variable)")
    add_flag(s, "--ocpi-version", "pin the version; else the highest both sides speak",
             choices=get_args(OcpiVersion))  # fmt: skip
    add_flag(s, "--token-encoding", "how the token is sent", choices=("base64", "plain", "auto"))
    _partner_connection(s)


def verify_flags(p: argparse.ArgumentParser) -> None:
    """Which pull to verify, and whether against the partner."""
    v = p.add_argument_group("what to verify")
    add_flag(v, "--pull-id", "the pull to verify")
    v.add_argument(
        "--against-partner",
        action="store_true",
        help="list the partner's keys again and compare (needs the pull's --url/--token or "
        "--partners)",
    )


def listing_flags(p: argparse.ArgumentParser) -> None:
    """How `verify --against-partner` lists the partner's keys."""
    s = p.add_argument_group("listing the partner")
    add_flag(s, "--limit", "page size asked for (the partner may cap it)", type=int)
    add_flag(s, "--concurrency", "requests in flight: auto or a number", type=concurrency_value,
             metavar="auto|N")  # fmt: skip
    add_flag(s, "--rate-limit", "requests per second to the partner", type=float)
    _partner_connection(s)


def redrive_flags(p: argparse.ArgumentParser) -> None:
    """Which pull's dead letters, judged how, delivered how."""
    r = p.add_argument_group("what to redrive")
    add_flag(r, "--pull-id", "the pull whose dead letters to validate again")
    add_flag(r, "--partner", "only this partner's dead letters")
    add_flag(r, "--module", "only this module's dead letters", choices=MODULES)
    add_flag(r, "--validation", "lenient reads the dialects real partners write; strict refuses",
             choices=VALIDATION_MODES)  # fmt: skip
    add_flag(r, "--partner-country", "the partner's country code (2.1.1 keys)")
    add_flag(r, "--partner-party", "the partner's party id (2.1.1 keys)")
    add_flag(r, "--delivery", "exactly-once: everything produced in one Kafka transaction",
             choices=("at-least-once", "exactly-once"))  # fmt: skip
    r.add_argument("--dry-run", action="store_true", help="count what would move; produce nothing")


def reset_flags(p: argparse.ArgumentParser) -> None:
    """Which pull (and which of its partner modules) to reset; the confirmation."""
    r = p.add_argument_group("what to reset")
    add_flag(r, "--pull-id", "the pull to reset")
    add_flag(r, "--partner", "only this partner's records of the pull")
    add_flag(r, "--module", "only this module's records of the pull", choices=MODULES)
    r.add_argument("--yes", action="store_true", help="do it (required when stdin is a terminal)")
