"""The flags of `ocpi-puller pull` (and of the commands that take the same): each with its help,
its default and its environment variable, read from the one settings object (`PullSettings`).

A flag given on the command line overrides its environment variable; both are validated by
`PullSettings`, so a bad value names the flag and the variable in one line (exit 2).
"""

from __future__ import annotations

import argparse
from typing import Any, get_args

from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from producer.config import PullSettings
from producer.ocpi.protocol.modules import MODULES, OcpiVersion
from producer.warning_kinds import KINDS
from schemas.validation import VALIDATION_MODES

ENV_PREFIX = "OCPI_PULLER_"
SECRET_FLAGS = frozenset({"token", "kafka_sasl_password"})

EXIT_CODES = """exit codes:
  0    every pull complete
  1    an internal error (a bug: please report it)
  2    bad usage or configuration (flags, environment, partners file)
  3    the partner refused us or the endpoint does not exist (token, URL, version)
  4    the partner was unreachable or kept failing (TLS included): try again later
  5    a pull is incomplete (shortfall, unusable pagination, refused link): resume or re-run;
       or it reported a warning named by --fail-on
  6    Kafka unavailable, refused, or this pull was fenced by a newer process
  130  interrupted (SIGINT/SIGTERM): resume with the same --pull-id"""


def env_names(field: str) -> list[str]:
    """The environment variables a setting is read from (its aliases, else the prefixed name)."""
    info = PullSettings.model_fields[field]
    alias = info.validation_alias
    choices = getattr(alias, "choices", None)
    if choices:
        return [str(c) for c in choices]
    return [ENV_PREFIX + field.upper()]


def flag_name(field: str) -> str:
    """`date_from` → `--date-from` (the flag of a setting)."""
    return "--" + field.replace("_", "-")


def _shown_default(info: FieldInfo) -> str | None:
    default = info.default
    if default is PydanticUndefined or default is None or default is False:
        return None
    if isinstance(default, float) and default.is_integer():
        return str(int(default))
    return str(default)


def add_flag(
    group: argparse._ArgumentGroup,
    name: str,
    text: str,
    *,
    field: str | None = None,
    default_text: str | None = None,
    aliases: tuple[str, ...] = (),
    **options: Any,
) -> None:
    """Add one flag (and other names for it) whose help ends with its default and its
    environment variable."""
    field = field or name.removeprefix("--").replace("-", "_")
    info = PullSettings.model_fields[field]
    shown = default_text or _shown_default(info)
    envs = " or ".join(env_names(field))
    tail = f"default {shown}; env {envs}" if shown else f"env {envs}"
    options.setdefault("default", None)  # unset flags leave the environment its say
    group.add_argument(name, *aliases, dest=field, help=f"{text} ({tail})", **options)


def _switch(group: argparse._ArgumentGroup, name: str, text: str, **kw: Any) -> None:
    add_flag(group, name, text, action="store_true", **kw)


def add_partner_flags(p: argparse.ArgumentParser) -> None:
    """Who to pull from and as whom."""
    g = p.add_argument_group("partner")
    add_flag(g, "--url", "the partner's versions URL, or a module endpoint (…/2.2.1/tokens)")
    add_flag(g, "--token", "the credentials token (prefer the environment variable)")
    add_flag(g, "--module", "which module to pull", choices=MODULES)
    add_flag(
        g,
        "--ocpi-version",
        "pin the version; else the highest both sides speak",
        choices=get_args(OcpiVersion),
    )
    add_flag(g, "--partner", "the partner's name in keys, headers and events (default: its host)")
    add_flag(g, "--partner-country", "the partner's country code (OCPI-to-*, 2.1.1 keys)")
    add_flag(g, "--partner-party", "the partner's party id (OCPI-to-*, 2.1.1 keys)")
    add_flag(g, "--from-country", "our country code (OCPI-from-country-code)")
    add_flag(g, "--from-party", "our party id (OCPI-from-party-id)")
    add_flag(
        g,
        "--token-encoding",
        "how the token is sent: auto follows the version and retries the other once",
        choices=("base64", "plain", "auto"),
    )
    add_flag(g, "--partners", "a YAML file of partners to pull", field="partners_file")


def add_scope_flags(p: argparse.ArgumentParser) -> None:
    """What to pull, and how to read what comes back."""
    g = p.add_argument_group("what to pull")
    add_flag(
        g, "--limit", "page size asked for (the partner may cap it)", default_text="1000", type=int
    )
    add_flag(g, "--date-from", "only objects with last_updated >= this (RFC 3339)")
    add_flag(g, "--date-to", "only objects with last_updated < this", default_text="now")
    _switch(g, "--incremental", "from the last complete pull's date_to, less the overlap")
    add_flag(g, "--incremental-overlap-s", "seconds the incremental window reaches back", type=int)
    add_flag(g, "--pull-id", "name of this pull; the same id again resumes it")
    add_flag(
        g,
        "--resume",
        "resume --pull-id from its checkpoint",
        default_text="if one exists",
        action=argparse.BooleanOptionalAction,
    )
    add_flag(
        g,
        "--probe-past-end",
        "read past a page without Link: auto where totals or links are missing or contradict "
        "what arrived, on past every full page, off never (the flag alone: on)",
        nargs="?",
        const="on",
        choices=("auto", "on", "off"),
    )
    _switch(g, "--emit-tombstones", "tombstone keys a complete full pull no longer finds")
    _switch(g, "--skip-unchanged", "produce only objects whose content changed")
    add_flag(
        g,
        "--validation",
        "lenient reads the dialects real partners write; strict dead-letters them",
        choices=VALIDATION_MODES,
    )
    add_flag(
        g,
        "--link-repair",
        "read by offset where a next link cannot be used as given; off refuses it",
        choices=("auto", "off"),
    )


def add_scale_flags(p: argparse.ArgumentParser) -> None:
    """How hard, how patiently, in how many processes."""
    g = p.add_argument_group("scale and behaviour")
    add_flag(
        g,
        "--concurrency",
        "requests in flight per partner: auto finds the partner's capacity, a number pins it",
        type=concurrency_value,
        metavar="auto|N",
    )
    add_flag(g, "--max-concurrency", "the most requests in flight auto may reach", type=int)
    add_flag(g, "--fanout", "pages fetched ahead in a window", type=int)
    add_flag(g, "--window-size", "target objects per date window", type=int)
    add_flag(g, "--shard-index", "this process's shard", type=int)
    add_flag(g, "--shard-count", "processes sharing the pull (all with one --pull-id)", type=int)
    add_flag(g, "--plan-wait-s", "how long shards > 0 wait for shard 0's plan", type=float)
    add_flag(
        g, "--rate-limit", "requests per second to the partner", default_text="none", type=float
    )
    add_flag(
        g,
        "--rate-burst",
        "requests allowed at once above the rate",
        default_text="the rate",
        type=float,
    )
    add_flag(g, "--request-timeout-s", "seconds one partner request may take", type=float)
    add_flag(
        g, "--max-attempts", "attempts per request before the partner counts as down", type=int
    )
    add_flag(
        g,
        "--max-rereads",
        "reads of an unsplittable piece of an unstable list, its keys unioned",
        type=int,
    )
    add_flag(g, "--max-page-bytes", "the largest page body accepted", type=int)
    add_flag(g, "--max-parallel-pulls", "partner modules pulled at once", type=int)
    add_flag(g, "--heartbeat-s", "seconds between heartbeat events of a running pull", type=float)
    add_flag(g, "--ca-bundle", "CA certificates to verify the partner's TLS with")
    _switch(g, "--insecure-skip-tls-verify", "do not verify the partner's certificate (loud)")


def add_kafka_flags(p: argparse.ArgumentParser) -> None:
    """Where the records go."""
    g = p.add_argument_group("kafka")
    add_flag(g, "--bootstrap-servers", "Kafka bootstrap servers")
    add_flag(g, "--topic-prefix", "topics are <prefix>.<module>, <prefix>.progress, …")
    add_flag(g, "--topic-partitions", "partitions of topics this run creates", type=int)
    add_flag(g, "--replication-factor", "replication of topics this run creates", type=int)
    add_flag(g, "--kafka-connect-timeout-s", "how long a broker never reached is waited for",
             type=float)  # fmt: skip
    add_flag(g, "--kafka-deadline-s", "how long an outage during a pull is waited out", type=float)
    add_flag(g, "--kafka-request-timeout-s", "an acknowledgement slower than this is reported, "
             "then waited for up to the deadline (never resent)", type=float)  # fmt: skip
    add_flag(g, "--kafka-replay-s", "after a lost broker, re-read what it acknowledged this long "
             "before (0: off)", type=float)  # fmt: skip
    add_flag(g, "--delivery", "exactly-once: Kafka transactions, for read_committed consumers",
             choices=("at-least-once", "exactly-once"))  # fmt: skip
    add_flag(g, "--transaction-pages", "exactly-once: acknowledged pages per transaction",
             type=int)  # fmt: skip
    add_flag(g, "--transaction-ms", "exactly-once: milliseconds per transaction", type=int)
    add_kafka_security_flags(g)


def add_kafka_security_flags(g: argparse._ArgumentGroup) -> None:
    """How to log in to Kafka: the same flags for `pull` and every command that reads Kafka."""
    add_flag(g, "--kafka-security-protocol", "how to talk to the brokers",
             choices=("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"))  # fmt: skip
    add_flag(g, "--kafka-sasl-mechanism", "SASL mechanism",
             choices=("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"))  # fmt: skip
    add_flag(g, "--kafka-sasl-username", "SASL user name")
    add_flag(g, "--kafka-sasl-password", "SASL password (prefer the environment variable)")
    add_flag(g, "--kafka-ssl-cafile", "CA certificates to verify the brokers with",
             aliases=("--kafka-ca-file",))  # fmt: skip
    add_flag(g, "--kafka-ssl-certfile", "mutual TLS: this client's certificate (PEM)")
    add_flag(g, "--kafka-ssl-keyfile", "mutual TLS: this client's private key (PEM)")


def add_output_flags(p: argparse.ArgumentParser) -> None:
    """What the operator sees."""
    g = p.add_argument_group("output")
    add_flag(
        g,
        "--fail-on",
        "warning kinds that make a complete pull exit 5 (error_kind warning), separated by "
        f"commas, or all (every kind but the notices): {', '.join(k.name for k in KINDS)}",
        metavar="WARNING[,WARNING…]",
    )
    add_flag(g, "--output", "text for people, json for one summary line", choices=("text", "json"))
    add_flag(
        g,
        "--no-progress-bar",
        "log lines instead of the live bar on a terminal",
        field="progress_bar",
        action="store_false",
        default_text="the bar on a terminal",
    )
    g.add_argument(
        "--log-level",
        type=log_level,
        help="DEBUG, INFO, WARNING or ERROR, any case (default INFO; env OCPI_PULLER_LOG_LEVEL)",
    )


LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


def concurrency_value(text: str) -> str | int:
    """`auto` or a whole number (its range is the settings' to check)."""
    word = text.strip().lower()
    if word == "auto":
        return word
    try:
        return int(word)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is neither auto nor a number") from None


def log_level(text: str) -> str:
    """A log level in any case."""
    level = text.strip().upper()
    if level not in LOG_LEVELS:
        raise argparse.ArgumentTypeError(f"{text!r} is not one of {', '.join(LOG_LEVELS)}")
    return level


def add_pull_flags(p: argparse.ArgumentParser) -> None:
    """Every flag of `pull`, in its groups."""
    add_partner_flags(p)
    add_scope_flags(p)
    add_scale_flags(p)
    add_kafka_flags(p)
    add_output_flags(p)
