"""The parsers of the commands besides `pull`: status, discover, plan, verify, reset. Each takes
its Kafka and partner settings from the same flags and variables as `pull`."""

from __future__ import annotations

import argparse
import re
from datetime import timedelta

from producer.cli_settings import settings_from_args
from producer.commands import flags
from producer.flags import add_flag, add_partner_flags, add_pull_flags

LONGEST_LOOK_BACK = timedelta(days=36_525)


def _duration(text: str) -> timedelta:
    match = re.fullmatch(r"(\d+)([smhd])", text.strip())
    if match is None:
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration like 30m, 24h or 7d")
    unit = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}[match.group(2)]
    try:
        duration = timedelta(**{unit: int(match.group(1))})
    except OverflowError:
        duration = timedelta.max
    if duration > LONGEST_LOOK_BACK:
        raise argparse.ArgumentTypeError(f"{text!r} reaches back more than 100 years")
    return duration


def add_status_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = commands.add_parser(
        "status",
        help="show recent pulls per partner/module from the progress topic",
        description="Read <prefix>.progress and show each recent pull, one row per pull and "
        "shard: state, objects so far of the total reported, rate, ETA, windows, how long ago "
        "its last event came, the last problem. Long texts are cut to the terminal's width and "
        "shown whole under the table.",
    )
    flags.kafka_connection_flags(p)
    p.add_argument("--since", type=_duration, default=timedelta(hours=24), help="e.g. 30m, 24h")
    p.add_argument("--partner")
    p.add_argument("--module")
    p.add_argument(
        "--follow",
        action="store_true",
        help="keep reading: on a terminal the table is redrawn; elsewhere, and for json and "
        "tsv, one line per pull whose row changed",
    )
    o = p.add_argument_group("output")
    add_flag(o, "--output", "text; json: one object per pull and shard, one a line; tsv: "
             "a header, then one line per pull and shard",
             choices=("text", "json", "tsv"))  # fmt: skip
    o.add_argument("--wide", action="store_true", help="every text whole in the table")
    p.set_defaults(run=_run_status)


def _run_status(args: argparse.Namespace) -> int:
    from producer.commands import status

    return status.run(args, settings_from_args)


def add_discover_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = commands.add_parser(
        "discover",
        help="show the OCPI versions and endpoints a partner offers, and which a pull would use",
        description="Versions discovery as `pull` does it: the versions the partner offers, the "
        "one a pull would choose and why, and every endpoint of that version with its role.",
    )
    flags.discover_partner_flags(p)
    flags.command_output_flags(p)
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
    flags.verify_flags(p)
    add_partner_flags(p)
    flags.listing_flags(p)
    flags.kafka_connection_flags(p)
    flags.command_output_flags(p)
    p.set_defaults(run=_run_verify)


def _run_verify(args: argparse.Namespace) -> int:
    from producer.commands import verify

    return verify.run(args, settings_from_args)


def add_redrive_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = commands.add_parser(
        "redrive",
        help="validate a pull's dead letters again and produce those that now pass",
        description="Read the pull's dead letters from <prefix>.deadletter, validate each again "
        "under the current models and --validation, and produce those that now pass to the "
        "object topic (the same key; headers as a pull gives them, plus redrive-id). The rest "
        "stay. A letter whose key was written after it failed is left (superseded). Prints the "
        "counts; --dry-run only counts.",
    )
    flags.redrive_flags(p)
    flags.kafka_connection_flags(p)
    flags.command_output_flags(p)
    p.set_defaults(run=_run_redrive)


def _run_redrive(args: argparse.Namespace) -> int:
    from producer.commands import redrive

    return redrive.run(args, settings_from_args)


def add_broker_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = commands.add_parser(
        "broker",
        help="run the embedded Kafka-protocol broker (noida-db) on loopback, for trying things",
        description="Start the embedded Kafka-protocol broker (noida-db) on 127.0.0.1, print its "
        "bootstrap address, and serve until Ctrl-C or SIGTERM, which stop every process it "
        "started. Data stays in --data-dir. For trying the puller on one machine, not for "
        "production. Needs the broker extra: pip install 'ocpi-puller[broker]'.",
    )
    p.add_argument("--port", type=_port, default=9092, help="the port to listen on (default 9092)")
    p.add_argument(
        "--data-dir",
        help="where the broker keeps its data (default .ocpi-puller-broker in the working "
        "directory)",
    )
    flags.command_output_flags(p)
    p.set_defaults(run=_run_broker)


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        port = -1
    if not 0 < port < 65536:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number (1-65535)")
    return port


def _run_broker(args: argparse.Namespace) -> int:
    from producer.commands import broker

    return broker.run(args)


def add_reset_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = commands.add_parser(
        "reset",
        help="discard a pull's checkpoints so the same --pull-id starts afresh",
        description="Write a reset record for the pull (and tombstones for its window "
        "checkpoints) on <prefix>.checkpoints: the next pull with the same id plans afresh "
        "instead of resuming or reporting it complete. Objects already in Kafka stay.",
    )
    flags.reset_flags(p)
    flags.kafka_connection_flags(p)
    flags.command_output_flags(p)
    p.set_defaults(run=_run_reset)


def _run_reset(args: argparse.Namespace) -> int:
    from producer.commands import reset

    return reset.run(args, settings_from_args)
