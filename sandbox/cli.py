"""The `ocpi-puller sandbox` command: its flags and how they become a `SandboxConfig`."""

from __future__ import annotations

import argparse
import asyncio
import math
from collections.abc import Callable
from pathlib import Path
from typing import NoReturn

from producer.errors import ConfigError
from sandbox.config import (
    LINK_DEFECTS,
    LINK_PRESETS,
    REDIRECT_STATUSES,
    SandboxConfig,
    expand_link_defects,
)
from sandbox.dialects import DIALECTS, parse_dialects
from sandbox.faults import FaultRates
from sandbox.generator import VERSIONS, Party


def _whole_number(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None


def _finite_number(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text!r} is not a finite number")
    return value


def _rate(text: str) -> float:
    value = _finite_number(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"{text} is not a probability between 0 and 1")
    return value


def non_negative_int(text: str) -> int:
    """An argparse type: a whole number, 0 or more."""
    value = _whole_number(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text} is negative")
    return value


def positive_int(text: str) -> int:
    """An argparse type: a whole number, 1 or more."""
    value = _whole_number(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text} is not 1 or more")
    return value


def port_number(text: str) -> int:
    """An argparse type: a TCP port, 0 to 65535 (0 picks a free one)."""
    value = _whole_number(text)
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"{text} is not a port number (0-65535)")
    return value


def non_negative_float(text: str) -> float:
    """An argparse type: a finite number, 0 or more."""
    value = _finite_number(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text} is negative")
    return value


def positive_float(text: str) -> float:
    """An argparse type: a finite number above 0."""
    value = _finite_number(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text} is not above 0")
    return value


def comma_list(choices: tuple[str, ...]) -> Callable[[str], tuple[str, ...]]:
    """An argparse type: a comma-separated list of `choices` (order kept, repeats dropped)."""

    def parse(text: str) -> tuple[str, ...]:
        items = tuple(dict.fromkeys(item.strip() for item in text.split(",") if item.strip()))
        unknown = [item for item in items if item not in choices]
        if unknown:
            raise argparse.ArgumentTypeError(
                f"{', '.join(unknown)} not one of {', '.join(choices)}"
            )
        return items

    return parse


class _OneLineErrors:
    """`ArgumentParser.error` as the puller's one line (`ocpi-puller: config: …`, exit 2; one
    JSON line under --output json), naming the flag, without the long usage."""

    def __init__(self, parser: argparse.ArgumentParser) -> None:
        self._parser = parser

    def __call__(self, message: str) -> NoReturn:
        raise ConfigError(f"{message} (see {self._parser.prog} --help)")


def add_sandbox_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register `ocpi-puller sandbox` and its flags (defaults: a spec-perfect partner)."""
    p = commands.add_parser(
        "sandbox",
        help="run the sandbox OCPI partner (a realistic, misbehaving-on-demand test server)",
        description="Serve OCPI 2.1.1, 2.2.1 and 2.3.0 list endpoints with generated data, "
        "churn and the faults and quirks of real partners. Defaults are spec-perfect.",
    )
    # The sandbox has ~50 flags: argparse's usage block would bury the one line that matters.
    p.error = _OneLineErrors(p)  # type: ignore[method-assign]
    _add_data_flags(p.add_argument_group("partner and data"))
    _add_protocol_flags(p.add_argument_group("protocol"))
    _add_paging_flags(p.add_argument_group("pagination, broken links and redirects"))
    _add_fault_flags(p.add_argument_group("faults, rate limits and capacity"))
    _add_churn_flags(p.add_argument_group("churn: data that changes while it is paged"))
    p.set_defaults(run=_run_sandbox)


def _add_data_flags(g: argparse._ArgumentGroup) -> None:
    g.add_argument("--host", default="127.0.0.1")
    g.add_argument("--port", type=port_number, default=8090, help="0 picks a free port")
    g.add_argument(
        "--seed", type=_whole_number, default=1, help="data, faults and churn repeat for a seed"
    )
    for module, default in (
        ("tokens", 10_000),
        ("locations", 1_000),
        ("tariffs", 100),
        ("sessions", 1_000),
        ("cdrs", 1_000),
    ):
        g.add_argument(f"--{module}", type=non_negative_int, default=default, metavar="N")
    g.add_argument("--country-code", default="NL", help="the partner's own country code")
    g.add_argument("--party-id", default="SBX", help="the partner's own party id")
    g.add_argument(
        "--spacing-ms",
        type=positive_int,
        default=1000,
        help="last_updated distance between consecutive base objects (< 1000 makes ties)",
    )
    g.add_argument("--invalid-rate", type=_rate, default=0.0, help="objects that break the schema")
    g.add_argument(
        "--dialect",
        type=comma_list(DIALECTS),
        default=(),
        metavar="LIST",
        help="write objects as some real partners do, comma list of: " + ", ".join(DIALECTS),
    )


def _add_protocol_flags(g: argparse._ArgumentGroup) -> None:
    g.add_argument(
        "--ocpi-versions",
        type=comma_list(VERSIONS),
        default=VERSIONS,
        metavar="LIST",
        help="versions the versions endpoint offers (default 2.1.1,2.2.1,2.3.0); "
        "the others' endpoints answer 404",
    )
    g.add_argument("--token-value", default="sandbox-token", help="the accepted credentials token")
    g.add_argument(
        "--token-encoding",
        choices=("version", "base64", "plain", "any"),
        default="version",
        help="how the Authorization token must be encoded (version: plain in 2.1.1, else Base64)",
    )
    g.add_argument(
        "--require-headers",
        action="store_true",
        help="2.2.1/2.3.0: answer 400 without X-Request-ID, X-Correlation-ID and OCPI-from/to-* "
        "(to-* naming this party) on modules, or with routing headers on versions endpoints",
    )
    g.add_argument("--tls-cert", type=Path, help="serve HTTPS with this PEM certificate chain")
    g.add_argument("--tls-key", type=Path, help="the PEM private key of --tls-cert")


def _add_paging_flags(g: argparse._ArgumentGroup) -> None:
    g.add_argument("--max-limit", type=positive_int, default=1000, help="server page cap")
    g.add_argument("--default-limit", type=positive_int, help="page size without ?limit")
    g.add_argument("--link-style", choices=("absolute", "relative", "one-shot"), default="absolute")
    g.add_argument(
        "--link-defects",
        type=comma_list((*LINK_DEFECTS, *LINK_PRESETS)),
        default=(),
        metavar="LIST",
        help="next links broken as real servers break them, comma list of: "
        + ", ".join(LINK_DEFECTS)
        + "; preset py-ocpi = "
        + ",".join(LINK_PRESETS["py-ocpi"]),
    )
    g.add_argument(
        "--foreign-origin",
        metavar="URL",
        help="where cross-origin links and redirects lead (default: this host, port + 1)",
    )
    g.add_argument(
        "--ignore-offset",
        choices=("with-link", "without-link"),
        help="serve the first page whatever offset is asked, with a next link or without",
    )
    g.add_argument(
        "--redirect-slash",
        type=int,
        choices=REDIRECT_STATUSES,
        metavar="STATUS",
        help="FastAPI-style: URLs without their trailing slash answer this redirect "
        "(301, 302, 303, 307 or 308) to the slashed URL",
    )
    g.add_argument(
        "--redirect-cross-origin",
        action="store_true",
        help="the trailing-slash redirect leads to --foreign-origin (307 unless --redirect-slash)",
    )
    g.add_argument(
        "--broken-total",
        action="store_true",
        help="X-Total-Count = page length and no Link (partner pitfall P2)",
    )
    g.add_argument(
        "--sort-by",
        choices=("last_updated", "id", "none"),
        default="last_updated",
        help="how a list is ordered within its date filter (none: a fixed order of no meaning)",
    )
    g.add_argument(
        "--unordered",
        action="store_true",
        help="every list request gets its date window in a new random order (a hub listing a "
        "hash map): offsets skip some objects and repeat others",
    )
    g.add_argument(
        "--no-paging-headers",
        action="store_true",
        help="send no X-Total-Count, X-Limit or Link: the list is only sliced by offset/limit",
    )
    g.add_argument(
        "--date-filter-shift-s",
        type=_whole_number,
        default=0,
        metavar="S",
        help="apply date filters S seconds later than written (a time zone read wrongly): "
        "date_from=a&date_to=b lists [a+S, b+S)",
    )


def _add_fault_flags(g: argparse._ArgumentGroup) -> None:
    g.add_argument(
        "--latency-ms", type=non_negative_float, default=0.0, help="mean page latency (jittered)"
    )
    g.add_argument("--error-rate", type=_rate, default=0.0, help="HTTP 500/502/503")
    g.add_argument("--throttle-rate", type=_rate, default=0.0, help="HTTP 429 + Retry-After")
    g.add_argument(
        "--throttle-without-retry-after",
        action="store_true",
        help="send 429 without Retry-After, as some partners do",
    )
    g.add_argument("--retry-after-seconds", type=non_negative_int, default=1)
    g.add_argument(
        "--rate-limit",
        type=positive_float,
        help="answer 429 above this many page requests per second (with or without Retry-After)",
    )
    g.add_argument(
        "--no-rate-limit-headers",
        dest="rate_limit_headers",
        action="store_false",
        help="do not advertise --rate-limit in X-RateLimit-*/RateLimit-Policy headers",
    )
    g.add_argument("--reset-rate", type=_rate, default=0.0, help="connection dropped mid-body")
    g.add_argument("--stall-rate", type=_rate, default=0.0, help="no answer for --stall-seconds")
    g.add_argument("--stall-seconds", type=non_negative_float, default=60.0)
    g.add_argument("--envelope-error-rate", type=_rate, default=0.0, help="HTTP 200 + OCPI 3000")
    g.add_argument(
        "--capacity-workers",
        type=positive_int,
        metavar="K",
        help="serve at most K OCPI requests at once; the rest wait in line (latency grows)",
    )
    g.add_argument(
        "--capacity-queue",
        type=non_negative_int,
        metavar="Q",
        help="with --capacity-workers: more than Q waiting gets 429 + Retry-After "
        "(--retry-after-seconds); default unbounded",
    )


def _add_churn_flags(g: argparse._ArgumentGroup) -> None:
    g.add_argument(
        "--mutation-rate",
        type=non_negative_float,
        default=0.0,
        help="mutations per object served, in the module served (e.g. 0.001)",
    )
    g.add_argument(
        "--mutations-per-s",
        type=non_negative_float,
        default=0.0,
        help="mutations per second of wall-clock time in every non-empty module, requests or not",
    )
    g.add_argument(
        "--mutation-kinds",
        type=comma_list(("update", "delete", "insert", "touch")),
        default=("update", "delete", "insert"),
        metavar="LIST",
        help="what random mutations do, comma list of update, delete, insert, touch "
        "(default update,delete,insert: 70/15/15)",
    )
    g.add_argument(
        "--clock-skew-s",
        type=_whole_number,
        default=0,
        metavar="S",
        help="the partner's clock runs S seconds ahead (negative: behind): envelope timestamps, "
        "HTTP Date and the last_updated of its changes",
    )
    g.add_argument(
        "--order",
        choices=("last_updated", "created"),
        default="last_updated",
        help="list order: last_updated (an update moves the object to the end) or created "
        "(it keeps its place unless a date filter drops it)",
    )


def _run_sandbox(args: argparse.Namespace) -> int:
    from sandbox.app import serve_forever  # the server only when the command runs

    if args.tls_key is not None and args.tls_cert is None:
        raise ConfigError("--tls-key needs --tls-cert")
    for pem in (args.tls_cert, args.tls_key):
        if pem is not None and not pem.is_file():
            raise ConfigError(f"no such file: {pem}")
    try:
        asyncio.run(serve_forever(config_from_args(args)))
    except ValueError as error:
        raise ConfigError(str(error)) from None
    except OSError as error:
        raise ConfigError(f"cannot listen on {args.host}:{args.port}: {error.strerror}") from None
    return 0


def config_from_args(args: argparse.Namespace) -> SandboxConfig:
    """The `SandboxConfig` the flags describe; ValueError for flags that cannot work together."""
    return SandboxConfig(
        host=args.host,
        port=args.port,
        seed=args.seed,
        sizes={
            "tokens": args.tokens,
            "locations": args.locations,
            "tariffs": args.tariffs,
            "sessions": args.sessions,
            "cdrs": args.cdrs,
        },
        party=Party(args.country_code.upper(), args.party_id.upper()),
        token_value=args.token_value,
        token_encoding=args.token_encoding,
        max_limit=args.max_limit,
        default_limit=args.default_limit,
        link_style=args.link_style,
        latency_ms=args.latency_ms,
        faults=FaultRates(
            stall=args.stall_rate,
            reset=args.reset_rate,
            error=args.error_rate,
            throttle=args.throttle_rate,
            envelope_error=args.envelope_error_rate,
        ),
        stall_seconds=args.stall_seconds,
        retry_after_seconds=args.retry_after_seconds,
        throttle_sends_retry_after=not args.throttle_without_retry_after,
        rate_limit=args.rate_limit,
        rate_limit_headers=args.rate_limit_headers,
        invalid_rate=args.invalid_rate,
        mutation_rate=args.mutation_rate,
        mutations_per_s=args.mutations_per_s,
        mutation_kinds=args.mutation_kinds,
        order=args.order,
        tls_cert=args.tls_cert,
        tls_key=args.tls_key,
        spacing_ms=args.spacing_ms,
        broken_total=args.broken_total,
        no_paging_headers=args.no_paging_headers,
        sort_by=args.sort_by,
        unordered=args.unordered,
        date_filter_shift_s=args.date_filter_shift_s,
        clock_skew_s=args.clock_skew_s,
        link_defects=expand_link_defects(args.link_defects),
        foreign_origin=args.foreign_origin,
        ignore_offset=args.ignore_offset,
        redirect_status=args.redirect_slash,
        redirect_cross_origin=args.redirect_cross_origin,
        ocpi_versions=args.ocpi_versions,
        require_headers=args.require_headers,
        dialects=parse_dialects(args.dialect),
        capacity_workers=args.capacity_workers,
        capacity_queue=args.capacity_queue,
    )
