"""The sandbox partner's settings: sizes, pagination behaviour, faults."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final, Literal, get_args

from sandbox.dataset import (
    DEFAULT_HISTORY_START_MS,
    DEFAULT_MUTATION_KINDS,
    ListOrder,
    MutationKind,
)
from sandbox.dialects import Dialect, parse_dialects
from sandbox.faults import FaultRates
from sandbox.generator import VERSIONS, Module, Party

LinkStyle = Literal["absolute", "relative", "one-shot"]
SortBy = Literal["last_updated", "id", "none"]
TokenEncoding = Literal["version", "base64", "plain", "any"]
IgnoreOffset = Literal["with-link", "without-link"]
REDIRECT_STATUSES: Final = (301, 302, 303, 307, 308)
LinkDefect = Literal[
    "https",
    "wrong-role",
    "enum-path",
    "none-filters",
    "empty-last",
    "echo-limit",
    "cross-origin",
    "unparseable",
    "no-rel",
]
LINK_DEFECTS: Final[tuple[LinkDefect, ...]] = get_args(LinkDefect)
_DEFECT_NAMED: Final[dict[str, LinkDefect]] = {defect: defect for defect in LINK_DEFECTS}
# A preset names the defects one real server has together (sandbox/links.py says which is which).
LINK_PRESETS: Final[dict[str, tuple[LinkDefect, ...]]] = {
    "py-ocpi": ("https", "wrong-role", "enum-path", "none-filters", "empty-last", "echo-limit"),
}
PY_OCPI: Final = LINK_PRESETS["py-ocpi"]


def expand_link_defects(names: tuple[str, ...]) -> tuple[LinkDefect, ...]:
    """Defect names with presets replaced by their defects; ValueError for an unknown name."""
    expanded: dict[LinkDefect, None] = {}
    for name in names:
        if name in LINK_PRESETS:
            expanded.update(dict.fromkeys(LINK_PRESETS[name]))
        elif name in _DEFECT_NAMED:
            expanded[_DEFECT_NAMED[name]] = None
        else:
            choices = ", ".join((*LINK_DEFECTS, *LINK_PRESETS))
            raise ValueError(f"unknown link defect {name!r} (choose from {choices})")
    return tuple(expanded)


@dataclass(frozen=True, slots=True)
class SandboxConfig:
    """Everything that decides how the sandbox partner behaves; defaults are a spec-perfect one."""

    host: str = "127.0.0.1"
    port: int = 8090
    seed: int = 1
    sizes: Mapping[Module, int] = field(
        default_factory=lambda: {
            "tokens": 10_000,
            "locations": 1_000,
            "tariffs": 100,
            "sessions": 1_000,
            "cdrs": 1_000,
        }
    )
    party: Party = field(default_factory=Party)
    token_value: str = "sandbox-token"
    # "version": base64 for 2.2.1, plain for 2.1.1, as each spec says; the others model partners
    # that encode one way whatever the version (ocpi/ocpi#212) or accept both.
    token_encoding: TokenEncoding = "version"
    max_limit: int = 1000
    default_limit: int | None = None
    link_style: LinkStyle = "absolute"
    latency_ms: float = 0.0
    faults: FaultRates = field(default_factory=FaultRates)
    stall_seconds: float = 60.0
    retry_after_seconds: int = 1
    throttle_sends_retry_after: bool = True
    # Answer 429 when a client sends more than this many page requests per second (P9).
    rate_limit: float | None = None
    # ... and say so in every page answer (X-RateLimit-Limit/-Remaining/-Reset, RateLimit-Policy),
    # as most rate-limited APIs do; False: the limit shows only as 429s.
    rate_limit_headers: bool = True
    invalid_rate: float = 0.0
    # Mutations per object served, applied to the module just served (a busy partner).
    mutation_rate: float = 0.0
    # Mutations per second of wall-clock time for every non-empty module, requests or not.
    mutations_per_s: float = 0.0
    # What random mutations do (both kinds of churn): weights 15% insert, 15% delete, 70% update
    # (70% touch: last_updated moves, content stays), renormalised over the kinds chosen.
    mutation_kinds: tuple[MutationKind, ...] = DEFAULT_MUTATION_KINDS
    # "last_updated": an update moves the object to the end (ocpi/ocpi#373); "created": it keeps
    # its place in unfiltered lists (the spec's recommended order).
    order: ListOrder = "last_updated"
    spacing_ms: int = 1000
    history_start_ms: int = DEFAULT_HISTORY_START_MS
    # Partner pitfall P2: X-Total-Count is the page length, so no Link is ever sent.
    broken_total: bool = False
    # A server that slices its list by offset/limit and sends no X-Total-Count, X-Limit or Link.
    no_paging_headers: bool = False
    # The partner applies date filters this many seconds later than written (a time zone read
    # wrongly): `date_from=a&date_to=b` lists [a + s, b + s).
    date_filter_shift_s: int = 0
    # The partner's clock runs this many seconds ahead (negative: behind): its envelope
    # timestamps, its HTTP Date and the last_updated of every change it makes.
    clock_skew_s: int = 0
    # How a list is ordered within its date filter: by last_updated (the default), by object id,
    # or in a fixed order of no meaning; `unordered`: a new random order for every request (a
    # hub listing a hash map), so offsets skip some objects and repeat others.
    sort_by: SortBy = "last_updated"
    unordered: bool = False
    one_shot_capacity: int = 100_000
    # Next-link and paging-header defects of real servers (sandbox/links.py); () is spec-perfect.
    link_defects: tuple[LinkDefect, ...] = ()
    # Where cross-origin links and redirects lead; None: the request's host, one port up.
    foreign_origin: str | None = None
    # A partner that ignores offset: every request gets the first page, with or without a Link.
    ignore_offset: IgnoreOffset | None = None
    # FastAPI-style URLs: the canonical ones end in "/", the unslashed ones (which discovery
    # advertises) answer this redirect; cross-origin sends it to `foreign_origin` (307 if unset).
    redirect_status: int | None = None
    redirect_cross_origin: bool = False
    # The OCPI versions the versions endpoint offers; the others' endpoints answer 404.
    ocpi_versions: tuple[str, ...] = VERSIONS
    # Enforce the 2.2+ request headers (X-Request-ID, X-Correlation-ID, OCPI-from/to-*): 400.
    require_headers: bool = False
    # How objects are written (sandbox/dialects.py): () is the spec's own format.
    dialects: tuple[Dialect, ...] = ()
    # Finite capacity (sandbox/capacity.py): at most this many OCPI requests served at once ...
    capacity_workers: int | None = None
    # ... and at most this many waiting; one more is answered 429 (None: the queue is unbounded).
    capacity_queue: int | None = None
    # Serve HTTPS with this certificate chain and key (PEM), as real partners do.
    tls_cert: Path | None = None
    tls_key: Path | None = None

    def __post_init__(self) -> None:
        # Settings that cannot work together fail here, before a socket is opened.
        for defect in self.link_defects:
            if defect not in LINK_DEFECTS:
                raise ValueError(f"unknown link defect {defect!r}")
        if self.redirect_status is not None and self.redirect_status not in REDIRECT_STATUSES:
            raise ValueError(f"redirect status {self.redirect_status} is not a redirect")
        if not self.ocpi_versions or not set(self.ocpi_versions) <= set(VERSIONS):
            raise ValueError(f"OCPI versions must be some of {', '.join(VERSIONS)}")
        parse_dialects(self.dialects)
        if not self.mutation_kinds or not set(self.mutation_kinds) <= set(get_args(MutationKind)):
            raise ValueError("mutation kinds must be one or more of update, delete, insert, touch")
        if self.capacity_workers is not None and self.capacity_workers < 1:
            raise ValueError("capacity workers must be 1 or more")
        if self.capacity_queue is not None:
            if self.capacity_workers is None:
                raise ValueError("a capacity queue needs capacity workers (--capacity-workers)")
            if self.capacity_queue < 0:
                raise ValueError("the capacity queue cannot be negative")
        if self.ignore_offset not in (None, *get_args(IgnoreOffset)):
            raise ValueError(f"unknown ignore_offset {self.ignore_offset!r}")

    @property
    def slashed_urls(self) -> bool:
        """Whether canonical URLs end in "/" (and the unslashed ones redirect)."""
        return self.redirect_status is not None or self.redirect_cross_origin

    @property
    def effective_default_limit(self) -> int:
        """Page size when the client sends no `limit`."""
        return self.max_limit if self.default_limit is None else self.default_limit
