"""`ocpi-puller` commands. Errors become one line on stderr and a documented exit code."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import re
import sys
from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import get_args

from producer.commands import flags
from producer.config import PullSettings
from producer.errors import ConfigError, PullError
from producer.ocpi.modules import MODULES, OcpiVersion
from sandbox.cli import add_sandbox_parser, non_negative_int

Command = Callable[[argparse.Namespace], int]


def _add_pull_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = commands.add_parser(
        "pull",
        help="pull a partner's OCPI module (or every partner in a partners file) into Kafka",
        description=(
            "Pull every object of an OCPI module into Kafka, one message per object keyed by its "
            "id. Every flag can also be set as OCPI_PULLER_<FLAG> (e.g. OCPI_PULLER_TOKEN)."
        ),
    )
    _add_partner_flags(p.add_argument_group("partner"))
    _add_scope_flags(p.add_argument_group("what to pull"))
    _add_scale_flags(p.add_argument_group("scale and behaviour"))
    _add_kafka_flags(p.add_argument_group("kafka"))
    _add_output_flags(p.add_argument_group("output"))
    p.set_defaults(run=_run_pull)


def _add_partner_flags(s: argparse._ArgumentGroup) -> None:
    s.add_argument("--url", help="module endpoint (…/2.2.1/tokens) or the partner's versions URL")
    s.add_argument("--token", help="credentials token (better: OCPI_PULLER_TOKEN)")
    s.add_argument("--module", choices=MODULES)
    s.add_argument("--ocpi-version", choices=get_args(OcpiVersion), help="else discovered")
    s.add_argument("--partner", help="partner name in keys, headers and events")
    s.add_argument("--partner-country", help="partner's country code (OCPI-to-*, 2.1.1 keys)")
    s.add_argument("--partner-party", help="partner's party id (OCPI-to-*, 2.1.1 keys)")
    s.add_argument("--from-country", help="our country code (OCPI-from-country-code)")
    s.add_argument("--from-party", help="our party id (OCPI-from-party-id)")
    s.add_argument("--token-encoding", choices=("base64", "plain", "auto"))
    s.add_argument("--partners", dest="partners_file", help="YAML file of partners to pull")


def _add_scope_flags(w: argparse._ArgumentGroup) -> None:
    w.add_argument("--limit", type=int, help="page size asked for (the partner may cap it)")
    w.add_argument("--date-from", help="only objects with last_updated >= this (RFC 3339)")
    w.add_argument("--date-to", help="only objects with last_updated < this (default: now)")
    w.add_argument(
        "--incremental",
        action="store_true",
        default=None,
        help="from the last complete pull's date_to (minus --incremental-overlap-s)",
    )
    w.add_argument("--incremental-overlap-s", type=int)
    w.add_argument("--pull-id", help="name of this pull; the same id again resumes it")
    w.add_argument(
        "--resume",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="resume the --pull-id from its checkpoint (default: if one exists)",
    )
    w.add_argument(
        "--probe-past-end",
        action="store_true",
        default=None,
        help="a full page without Link is not the end: fetch on until an empty page",
    )
    w.add_argument("--emit-tombstones", action="store_true", default=None)
    w.add_argument(
        "--link-repair",
        choices=("auto", "off"),
        help="read by offset where a next link cannot be used as given (default auto)",
    )
    w.add_argument("--skip-unchanged", action="store_true", default=None)


def _add_scale_flags(r: argparse._ArgumentGroup) -> None:
    r.add_argument("--concurrency", type=int, help="requests in flight per partner (default 4)")
    r.add_argument("--fanout", type=int, help="pages fetched ahead in a window (default 4)")
    r.add_argument("--window-size", type=int, help="target objects per date window")
    r.add_argument("--shard-index", type=int, help="this process's shard (JOB_COMPLETION_INDEX)")
    r.add_argument("--shard-count", type=int, help="processes sharing the pull")
    r.add_argument("--plan-wait-s", type=float, help="shards > 0 wait this long for the plan")
    r.add_argument("--rate-limit", type=float, help="requests per second to the partner")
    r.add_argument("--rate-burst", type=float)
    r.add_argument("--request-timeout-s", type=float)
    r.add_argument("--max-attempts", type=int)
    r.add_argument("--max-page-bytes", type=int)
    r.add_argument("--max-parallel-pulls", type=int, help="partners pulled at once")
    r.add_argument("--ca-bundle", help="CA certificates to verify the partner's TLS with")
    r.add_argument("--insecure-skip-tls-verify", action="store_true", default=None)


def _add_kafka_flags(k: argparse._ArgumentGroup) -> None:
    k.add_argument("--bootstrap-servers", help="Kafka bootstrap servers (KAFKA_BOOTSTRAP_SERVERS)")
    k.add_argument("--topic-prefix", help="topics are <prefix>.<module> etc. (default ocpi)")
    k.add_argument("--topic-partitions", type=int)
    k.add_argument("--replication-factor", type=int)
    k.add_argument(
        "--kafka-deadline-s", type=float, help="how long an outage during a pull is waited out"
    )
    k.add_argument(
        "--kafka-connect-timeout-s",
        type=float,
        help="how long a broker never reached at start is waited for (default 30)",
    )
    k.add_argument(
        "--kafka-request-timeout-s",
        type=float,
        help="retry a produce not acknowledged in this time",
    )
    k.add_argument(
        "--kafka-replay-s",
        type=float,
        help="after a broker outage, re-read what was acknowledged this long before it (0: off)",
    )
    k.add_argument(
        "--kafka-security-protocol", choices=("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
    )
    k.add_argument("--kafka-sasl-mechanism", choices=("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"))
    k.add_argument("--kafka-sasl-username")
    k.add_argument("--kafka-sasl-password", help="better: OCPI_PULLER_KAFKA_SASL_PASSWORD")
    k.add_argument("--kafka-ssl-cafile", help="CA certificates to verify the brokers with")


def _add_output_flags(o: argparse._ArgumentGroup) -> None:
    o.add_argument("--output", choices=("text", "json"))
    o.add_argument("--no-progress-bar", dest="progress_bar", action="store_false", default=None)
    o.add_argument(
        "--log-level",
        default=os.environ.get("OCPI_PULLER_LOG_LEVEL", "INFO").upper(),
        choices=("DEBUG", "INFO", "WARNING", "ERROR"),
    )


def settings_from_args(args: argparse.Namespace) -> PullSettings:
    """Flags given on the command line override the environment; the rest comes from it."""
    from pydantic import ValidationError

    from producer.config import describe_validation_error

    given = {
        name: value
        for name, value in vars(args).items()
        if value is not None and name not in ("run", "command", "log_level")
    }
    try:
        return PullSettings(**given)
    except ValidationError as error:
        raise ConfigError(describe_validation_error(error)) from None


def _run_pull(args: argparse.Namespace) -> int:
    from producer.run import print_result, run_in_loop

    logging.basicConfig(
        level=args.log_level,
        format="%(asctime)s %(levelname)s %(message)s",
        stream=sys.stderr,
    )
    # Kafka trouble is reported by the puller itself (warnings, progress events, one final line);
    # aiokafka's own logger repeats a connection error every 100 ms while a broker is away.
    logging.getLogger("aiokafka").setLevel(
        logging.DEBUG if args.log_level == "DEBUG" else logging.CRITICAL
    )
    settings = settings_from_args(args)
    result = run_in_loop(settings)
    print_result(result, settings.output)
    return result.exit_code


def _duration(text: str) -> timedelta:
    match = re.fullmatch(r"(\d+)([smhd])", text.strip())
    if match is None:
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration like 30m, 24h or 7d")
    unit = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}[match.group(2)]
    return timedelta(**{unit: int(match.group(1))})


def _add_status_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = commands.add_parser(
        "status",
        help="show recent pulls per partner/module from the progress topic",
        description="Read <prefix>.progress and show each recent pull: state, objects so far, "
        "total reported, rate, ETA, windows, last problem and age of the last event.",
    )
    flags.kafka_connection_flags(p.add_argument_group("kafka"))
    p.add_argument("--since", type=_duration, default=timedelta(hours=24), help="e.g. 30m, 24h")
    p.add_argument("--partner")
    p.add_argument("--module")
    p.add_argument("--follow", action="store_true", help="keep reading and redraw")
    p.add_argument("--output", choices=("text", "json"), default="text")
    p.set_defaults(run=_run_status)


def _run_status(args: argparse.Namespace) -> int:
    from producer.commands import status

    return status.run(args, settings_from_args)


def _add_discover_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = commands.add_parser(
        "discover",
        help="show the OCPI versions and endpoints a partner offers, and which a pull would use",
        description="Versions discovery as `pull` does it: the versions the partner offers, the "
        "one a pull would choose and why, and every endpoint of that version with its role.",
    )
    flags.discover_partner_flags(p.add_argument_group("partner"))
    flags.command_output_flags(p.add_argument_group("output"))
    p.set_defaults(run=_run_discover)


def _run_discover(args: argparse.Namespace) -> int:
    from producer.commands import discover

    return discover.run(args, settings_from_args)


def _add_plan_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = commands.add_parser(
        "plan",
        help="show the windows, totals, pages and duration a pull would have; writes nothing",
        description="Plan a pull as `pull` would (the same flags): discover, probe X-Total-Count "
        "per date window, then print the windows, totals, pages and the estimated duration at "
        "the latency measured. Nothing is written to Kafka.",
    )
    _add_partner_flags(p.add_argument_group("partner"))
    _add_scope_flags(p.add_argument_group("what to pull"))
    _add_scale_flags(p.add_argument_group("scale and behaviour"))
    _add_kafka_flags(p.add_argument_group("kafka (read for --incremental only)"))
    _add_output_flags(p.add_argument_group("output"))
    p.set_defaults(run=_run_plan)


def _run_plan(args: argparse.Namespace) -> int:
    from producer.commands import plan

    return plan.run(args, settings_from_args)


def _add_verify_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = commands.add_parser(
        "verify",
        help="count a pull's keys, duplicates and dead letters in Kafka; compare with the partner",
        description="Read the pull's messages back from Kafka (by their pull-id header): distinct "
        "keys, duplicates and dead letters per partner module. With --against-partner, list the "
        "partner's keys again within the pull's snapshot bounds (fetch only) and report missing "
        "and unexpected keys. Exit 0 only when nothing is missing.",
    )
    flags.verify_flags(p.add_argument_group("what to verify"))
    _add_partner_flags(p.add_argument_group("partner (for --against-partner)"))
    flags.listing_flags(p.add_argument_group("listing the partner"))
    flags.kafka_connection_flags(p.add_argument_group("kafka"))
    flags.command_output_flags(p.add_argument_group("output"))
    p.set_defaults(run=_run_verify)


def _run_verify(args: argparse.Namespace) -> int:
    from producer.commands import verify

    return verify.run(args, settings_from_args)


def _add_reset_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = commands.add_parser(
        "reset",
        help="discard a pull's checkpoints so the same --pull-id starts afresh",
        description="Write a reset record for the pull (and tombstones for its window "
        "checkpoints) on <prefix>.checkpoints: the next pull with the same id plans afresh "
        "instead of resuming or reporting it complete. Objects already in Kafka stay.",
    )
    flags.reset_flags(p.add_argument_group("what to reset"))
    flags.kafka_connection_flags(p.add_argument_group("kafka"))
    flags.command_output_flags(p.add_argument_group("output"))
    p.set_defaults(run=_run_reset)


def _run_reset(args: argparse.Namespace) -> int:
    from producer.commands import reset

    return reset.run(args, settings_from_args)


def _add_demo_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = commands.add_parser(
        "demo",
        help="embedded broker + sandbox partner + a pull with progress, then verify every key",
    )
    p.add_argument("--tokens", type=non_negative_int, default=1_000_000)
    p.add_argument("--max-limit", type=non_negative_int, default=500, help="sandbox page cap")
    p.add_argument("--concurrency", type=int, default=8)
    p.set_defaults(run=_run_demo)


def _run_demo(args: argparse.Namespace) -> int:
    from producer.demo import DemoOptions, run_demo

    logging.basicConfig(level="WARNING", format="%(levelname)s %(message)s", stream=sys.stderr)
    logging.getLogger("aiokafka").setLevel(logging.ERROR)
    options = DemoOptions(
        tokens=args.tokens, max_limit=args.max_limit, concurrency=args.concurrency
    )
    return asyncio.run(run_demo(options))


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every command."""
    parser = argparse.ArgumentParser(
        prog="ocpi-puller",
        description="Pull OCPI objects from roaming partners into Kafka.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_pull_parser(commands)
    _add_status_parser(commands)
    _add_discover_parser(commands)
    _add_plan_parser(commands)
    _add_verify_parser(commands)
    _add_reset_parser(commands)
    add_sandbox_parser(commands)
    _add_demo_parser(commands)
    return parser


def one_line(text: str) -> str:
    """Operators get one line per failure, whatever the message (YAML errors span several)."""
    return " ".join(text.split())


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `ocpi-puller` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    run: Command = args.run
    try:
        return run(args)
    except PullError as error:
        print(f"ocpi-puller: {error.kind}: {one_line(str(error))}", file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        print("ocpi-puller: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
