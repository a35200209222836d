"""The parsers of the commands besides `pull`: status, discover, plan, verify, reset. Each takes
its Kafka and partner settings from the same flags and variables as `pull`."""

from __future__ import annotations

import argparse
import re
from datetime import timedelta
from typing import get_args

from producer.cli_settings import settings_from_args
from producer.flags import add_partner_flags, add_pull_flags, log_level
from producer.ocpi.modules import MODULES, OcpiVersion


def _duration(text: str) -> timedelta:
    match = re.fullmatch(r"(\d+)([smhd])", text.strip())
    if match is None:
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration like 30m, 24h or 7d")
    unit = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}[match.group(2)]
    return timedelta(**{unit: int(match.group(1))})


def add_status_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = commands.add_parser(
        "status",
        help="show recent pulls per partner/module from the progress topic",
        description="Read <prefix>.progress and show each recent pull: state, objects so far, "
        "total reported, rate, ETA, windows, last problem and age of the last event.",
    )
    _add_kafka_connection_flags(p.add_argument_group("kafka"))
    p.add_argument("--since", type=_duration, default=timedelta(hours=24), help="e.g. 30m, 24h")
    p.add_argument("--partner")
    p.add_argument("--module")
    p.add_argument("--follow", action="store_true", help="keep reading and redraw")
    p.add_argument("--output", choices=("text", "json"), default="text")
    p.set_defaults(run=_run_status)


def _run_status(args: argparse.Namespace) -> int:
    from producer.commands import status

    return status.run(args, settings_from_args)


def _add_kafka_connection_flags(k: argparse._ArgumentGroup) -> None:
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


def _add_command_output_flags(o: argparse._ArgumentGroup) -> None:
    o.add_argument("--output", choices=("text", "json"), help="text (default) or one JSON line")
    o.add_argument(
        "--log-level",
        type=log_level,
        help="DEBUG, INFO, WARNING or ERROR, any case (default INFO; env OCPI_PULLER_LOG_LEVEL)",
    )


def add_discover_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = commands.add_parser(
        "discover",
        help="show the OCPI versions and endpoints a partner offers, and which a pull would use",
        description="Versions discovery as `pull` does it: the versions the partner offers, the "
        "one a pull would choose and why, and every endpoint of that version with its role.",
    )
    s = p.add_argument_group("partner")
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
    _add_command_output_flags(p.add_argument_group("output"))
    p.set_defaults(run=_run_discover)


def _run_discover(args: argparse.Namespace) -> int:
    from producer.commands import discover

    return discover.run(args, settings_from_args)


def add_plan_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = commands.add_parser(
        "plan",
        help="show the windows, totals, pages and duration a pull would have; writes nothing",
        description="Plan a pull as `pull` would (the same flags): discover, probe X-Total-Count "
        "per date window, then print the windows, totals, pages and the estimated duration at "
        "the latency measured. Nothing is written to Kafka.",
    )
    add_pull_flags(p)
    p.set_defaults(run=_run_plan)


def _run_plan(args: argparse.Namespace) -> int:
    from producer.commands import plan

    return plan.run(args, settings_from_args)


def add_verify_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = commands.add_parser(
        "verify",
        help="count a pull's keys, duplicates and dead letters in Kafka; compare with the partner",
        description="Read the pull's messages back from Kafka (by their pull-id header): distinct "
        "keys, duplicates and dead letters per partner module. With --against-partner, list the "
        "partner's keys again within the pull's snapshot bounds (fetch only) and report missing "
        "and unexpected keys. Exit 0 only when nothing is missing.",
    )
    v = p.add_argument_group("what to verify")
    v.add_argument("--pull-id", help="the pull to verify (OCPI_PULLER_PULL_ID)")
    v.add_argument(
        "--against-partner",
        action="store_true",
        help="list the partner's keys again and compare (needs the pull's --url/--token or "
        "--partners)",
    )
    add_partner_flags(p)
    s = p.add_argument_group("listing the partner")
    s.add_argument("--limit", type=int, help="page size asked for (the partner may cap it)")
    s.add_argument("--concurrency", type=int, help="requests in flight (default 4)")
    s.add_argument("--rate-limit", type=float, help="requests per second to the partner")
    s.add_argument("--request-timeout-s", type=float)
    s.add_argument("--max-attempts", type=int)
    s.add_argument("--ca-bundle", help="CA certificates to verify the partner's TLS with")
    s.add_argument("--insecure-skip-tls-verify", action="store_true", default=None)
    _add_kafka_connection_flags(p.add_argument_group("kafka"))
    _add_command_output_flags(p.add_argument_group("output"))
    p.set_defaults(run=_run_verify)


def _run_verify(args: argparse.Namespace) -> int:
    from producer.commands import verify

    return verify.run(args, settings_from_args)


def add_reset_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = commands.add_parser(
        "reset",
        help="discard a pull's checkpoints so the same --pull-id starts afresh",
        description="Write a reset record for the pull (and tombstones for its window "
        "checkpoints) on <prefix>.checkpoints: the next pull with the same id plans afresh "
        "instead of resuming or reporting it complete. Objects already in Kafka stay.",
    )
    r = p.add_argument_group("what to reset")
    r.add_argument("--pull-id", help="the pull to reset (OCPI_PULLER_PULL_ID)")
    r.add_argument("--partner", help="only this partner's records of the pull")
    r.add_argument("--module", choices=MODULES, help="only this module's records of the pull")
    r.add_argument("--yes", action="store_true", help="do it (required when stdin is a terminal)")
    _add_kafka_connection_flags(p.add_argument_group("kafka"))
    _add_command_output_flags(p.add_argument_group("output"))
    p.set_defaults(run=_run_reset)


def _run_reset(args: argparse.Namespace) -> int:
    from producer.commands import reset

    return reset.run(args, settings_from_args)
