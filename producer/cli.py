"""`ocpi-puller` commands. Errors become one line on stderr and a documented exit code."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import re
import sys
import traceback
from collections.abc import Callable, Sequence
from typing import Literal, NoReturn, cast

from producer.cli_settings import settings_from_args
from producer.commands import parsers
from producer.commands.outcome import configure_logging
from producer.config import concurrency_value
from producer.errors import ConfigError, InternalError, InterruptedPullError, PullError
from producer.flags import EXIT_CODES, add_pull_flags, log_level
from producer.observe.secrets import log_to_stderr, mask_secrets
from producer.observe.telemetry import service_version
from sandbox.cli import add_sandbox_parser, non_negative_int

Command = Callable[[argparse.Namespace], int]


def _add_pull_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = commands.add_parser(
        "pull",
        help="pull a partner's OCPI module (or every partner in a partners file) into Kafka",
        description=(
            "Pull every object of an OCPI module into Kafka, one message per object keyed by its "
            "id. Every flag can also be set in the environment (named after each flag)."
        ),
        epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_pull_flags(p)
    p.set_defaults(run=_run_pull)


def _run_pull(args: argparse.Namespace) -> int:
    from producer.report import print_result
    from producer.run import run_in_loop

    settings = settings_from_args(args)
    result = run_in_loop(settings)
    print_result(result, settings.output)
    return result.exit_code


def _add_demo_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = commands.add_parser(
        "demo",
        help="embedded broker + sandbox partner + a pull with progress, then verify every key",
    )
    p.add_argument("--tokens", type=non_negative_int, default=1_000_000)
    p.add_argument("--max-limit", type=non_negative_int, default=500, help="sandbox page cap")
    p.add_argument("--concurrency", type=_concurrency, default=8, metavar="auto|N")
    p.set_defaults(run=_run_demo)


def _concurrency(text: str) -> int | Literal["auto"]:
    """As `pull --concurrency` takes it, checked before the demo starts its broker and partner."""
    try:
        return cast('int | Literal["auto"]', concurrency_value(text))
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _run_demo(args: argparse.Namespace) -> int:
    from producer.demo import DemoOptions, run_demo

    log_to_stderr("WARNING", "%(levelname)s %(message)s")
    logging.getLogger("aiokafka").setLevel(logging.ERROR)
    options = DemoOptions(
        tokens=args.tokens, max_limit=args.max_limit, concurrency=args.concurrency
    )
    return asyncio.run(run_demo(options))


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every command."""
    parser = OneLineParser(
        prog="ocpi-puller",
        description="Pull OCPI objects from roaming partners into Kafka.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {service_version()}")
    commands = cast(
        "argparse._SubParsersAction[argparse.ArgumentParser]",
        parser.add_subparsers(dest="command", required=True, metavar="COMMAND"),
    )
    _add_pull_parser(commands)
    parsers.add_status_parser(commands)
    parsers.add_discover_parser(commands)
    parsers.add_plan_parser(commands)
    parsers.add_verify_parser(commands)
    parsers.add_reset_parser(commands)
    parsers.add_redrive_parser(commands)
    parsers.add_broker_parser(commands)
    add_sandbox_parser(commands)
    _add_demo_parser(commands)
    return parser


def one_line(text: str) -> str:
    """Operators get one line per failure, whatever the message (YAML errors span several)."""
    return " ".join(text.split())


class OneLineParser(argparse.ArgumentParser):
    """Usage errors as one line (exit 2) and, under --output json, one JSON line."""

    def error(self, message: str) -> NoReturn:
        raise ConfigError(f"{without_values(message)} (see {self.prog} --help)")


UNRECOGNIZED = "unrecognized arguments: "
VALUE_SHOWN = re.compile(r"(--[A-Za-z0-9][\w-]*)=\S+")


def without_values(message: str) -> str:
    """A usage error without the values the operator typed: a mistyped `--tokn SECRET`, or a
    token given without its flag, must not put the secret on screen (names of flags stay)."""
    if message.startswith(UNRECOGNIZED):
        words = message[len(UNRECOGNIZED) :].split()
        shown = [w.partition("=")[0] + "=…" if "=" in w else w for w in words if w.startswith("-")]
        hidden = sum(1 for w in words if not w.startswith("-"))
        values = f"{hidden} value{'s' if hidden > 1 else ''}, not shown"
        if hidden and shown:
            shown.append(f"(and {values})")
        elif hidden:
            shown.append(values)
        return UNRECOGNIZED + " ".join(shown)
    return VALUE_SHOWN.sub(r"\1=…", message)


def wants_json(argv: Sequence[str]) -> bool:
    """Whether the operator asked for JSON output (known before the flags are parsed)."""
    chosen = os.environ.get("OCPI_PULLER_OUTPUT", "text").strip().lower()
    for index, word in enumerate(argv):
        if word.startswith("--output="):
            chosen = word.partition("=")[2]
        elif word == "--output" and index + 1 < len(argv):
            chosen = argv[index + 1]
    return chosen == "json"


def report_failure(error: PullError, json_output: bool) -> int:
    """One line on stderr and, under --output json, the one JSON summary line."""
    message = mask_secrets(one_line(str(error)))  # (a library's error text may quote one)
    print(f"ocpi-puller: {error.kind}: {message}", file=sys.stderr)
    if json_output:
        line = {"complete": False, "exit_code": error.exit_code, "error_kind": error.kind,
                "error": message}  # fmt: skip
        print(json.dumps(line, separators=(",", ":")), flush=True)
    return error.exit_code


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `ocpi-puller` console script."""
    words = list(sys.argv[1:] if argv is None else argv)
    json_output = wants_json(words)
    level = "INFO"
    try:
        level = log_level(os.environ.get("OCPI_PULLER_LOG_LEVEL", "INFO"))
        args = build_parser().parse_args(words)
        level = getattr(args, "log_level", None) or level
        configure_logging(level)
        run: Command = args.run
        return run(args)
    except argparse.ArgumentTypeError as error:
        bad = ConfigError(f"OCPI_PULLER_LOG_LEVEL: {error}")
        return report_failure(bad, json_output)
    except PullError as error:
        return report_failure(error, json_output)
    except KeyboardInterrupt:
        return report_failure(InterruptedPullError("interrupted"), json_output)
    except Exception as error:  # the last resort: a bug must still end in one line
        if level == "DEBUG":
            traceback.print_exc()
        internal = InternalError(f"{type(error).__name__}: {error} (a bug: please report it)")
        return report_failure(internal, json_output)


if __name__ == "__main__":
    sys.exit(main())
