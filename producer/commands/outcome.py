"""How every operator command ends: its report as text or one JSON line, one stderr line per
failure, and the exit codes of `pull` (errors.py): 2 usage, 3/4/5 partner, 5 incomplete, 6 Kafka,
130 interrupted.

A command is an async function returning an `Outcome`; `execute` runs it with SIGINT/SIGTERM
turned into a clean stop (exit 130), and any `PullError` (or Kafka failure) into its exit code.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import signal
import sys
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from aiokafka.errors import KafkaConnectionError, KafkaError

from producer.config import PullSettings
from producer.errors import InterruptedPullError, KafkaUnavailableError, PullError
from producer.kafka.connection import KafkaConnection
from producer.kafka.reach import unreachable
from producer.observe.secrets import log_to_stderr

SettingsOf = Callable[[argparse.Namespace], PullSettings]


@dataclass(slots=True)
class Outcome:
    """What a command found: the fields of its JSON line, its text lines, its exit code, and the
    failure that exit code stands for (printed as the one stderr line)."""

    fields: dict[str, Any] = field(default_factory=dict)
    text: list[str] = field(default_factory=list)
    failure: PullError | None = None

    @property
    def exit_code(self) -> int:
        """0, or the failure's exit code."""
        return 0 if self.failure is None else self.failure.exit_code


def configure_logging(level: str) -> None:
    """Log lines on stderr, as `pull` writes them; aiokafka's own only at debug level (it
    repeats a connection error every 100 ms while a broker is away)."""
    log_to_stderr(level, "%(asctime)s %(levelname)s %(message)s")
    logging.getLogger("aiokafka").setLevel(logging.DEBUG if level == "DEBUG" else logging.CRITICAL)


def output_of(args: argparse.Namespace) -> str:
    """`--output`, else OCPI_PULLER_OUTPUT (known even when the settings are not valid)."""
    chosen = getattr(args, "output", None) or os.environ.get("OCPI_PULLER_OUTPUT", "text")
    return "json" if chosen == "json" else "text"


@contextlib.contextmanager
def kafka_errors(connection: KafkaConnection, what: str) -> Iterator[None]:
    """A Kafka client's failure as one line (exit 6): why the broker cannot be reached, or the
    error's type (its message may name the broker's internals, never the SASL password)."""
    try:
        yield
    except (KafkaError, OSError) as error:
        reason = None
        if isinstance(error, (KafkaConnectionError, OSError)):
            reason = unreachable(connection.bootstrap_servers)  # why, which aiokafka never says
        raise KafkaUnavailableError(
            f"cannot {what} Kafka at {connection.bootstrap_servers}: "
            f"{reason or type(error).__name__}"
        ) from None


def run_interruptible(work: Callable[[], Awaitable[Outcome]]) -> Outcome:
    """asyncio.run with SIGINT/SIGTERM cancelling the work: a clean stop, exit 130."""

    async def main() -> Outcome:
        task = asyncio.current_task()
        assert task is not None
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, task.cancel)
        return await work()

    try:
        return asyncio.run(main())
    except asyncio.CancelledError:
        raise InterruptedPullError("stopped by a signal") from None


def execute(command: str, args: argparse.Namespace, work: Callable[[], Awaitable[Outcome]]) -> int:
    """Run a command and print how it ended; returns the exit code."""
    configure_logging(getattr(args, "log_level", None) or "INFO")
    try:
        outcome = run_interruptible(work)
    except PullError as error:
        outcome = Outcome(failure=error)
    report(command, outcome, output_of(args))
    return outcome.exit_code


def report(command: str, outcome: Outcome, output: str) -> None:
    """The report on stdout (text lines, or one JSON line), the failure as one stderr line."""
    failure = outcome.failure
    if output == "json":
        line = {
            "command": command,
            **outcome.fields,
            "exit_code": outcome.exit_code,
            "error_kind": None if failure is None else failure.kind,
            "error": None if failure is None else one_line(str(failure)),
        }
        print(json.dumps(line, separators=(",", ":"), default=str), flush=True)
    else:
        for text in outcome.text:
            print(text, flush=True)
    if failure is not None:
        print(f"ocpi-puller: {failure.kind}: {one_line(str(failure))}", file=sys.stderr)


def one_line(text: str) -> str:
    """Whatever the message, one line."""
    return " ".join(text.split())
