"""`ocpi-puller status`: the entry of the progress view (observe/status_view.py), with the Kafka
settings and environment of `pull` (bootstrap, SASL, TLS), one Ctrl-C or SIGTERM ending it with
exit 130, and a failure as one line (exit 6 when Kafka cannot be read)."""

from __future__ import annotations

import argparse
import os

from producer.commands.outcome import (
    Outcome,
    SettingsOf,
    configure_logging,
    kafka_errors,
    report,
    run_interruptible,
)
from producer.errors import PullError
from producer.flags import KAFKA_SECURITY_FIELDS
from producer.observe.status_view import Output, show_status

# The flags that make up the Kafka connection; the rest (--partner, --module, --since) filter.
KAFKA_FLAGS = ("bootstrap_servers", "topic_prefix", *KAFKA_SECURITY_FIELDS)


def output_of_status(args: argparse.Namespace) -> Output:
    """`--output` (text, json or tsv), else OCPI_PULLER_OUTPUT."""
    chosen = str(getattr(args, "output", None) or os.environ.get("OCPI_PULLER_OUTPUT", "text"))
    word = chosen.strip().lower()
    return "json" if word == "json" else "tsv" if word == "tsv" else "text"


def run(args: argparse.Namespace, settings_of: SettingsOf) -> int:
    """Entry point of `ocpi-puller status`."""
    configure_logging("WARNING")
    shown = output_of_status(args)

    async def work() -> Outcome:
        kafka_only = argparse.Namespace(**{f: getattr(args, f, None) for f in KAFKA_FLAGS})
        settings = settings_of(kafka_only)
        connection = settings.kafka_connection()
        with kafka_errors(connection, "read progress from"):
            await show_status(
                connection,
                settings.topic_prefix,
                since=args.since,
                partner=args.partner,
                module=args.module,
                follow=args.follow,
                output=shown,
                wide=args.wide,
            )
        return Outcome()

    try:
        run_interruptible(work)
    except PullError as error:
        report("status", Outcome(failure=error), "json" if shown == "json" else "text")
        return error.exit_code
    return 0
