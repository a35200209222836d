"""The sandbox partner's settings: sizes, pagination behaviour, faults."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from sandbox.dataset import (
    DEFAULT_HISTORY_START_MS,
    DEFAULT_MUTATION_KINDS,
    ListOrder,
    MutationKind,
)
from sandbox.faults import FaultRates
from sandbox.generator import Module, Party

LinkStyle = Literal["absolute", "relative", "one-shot"]
TokenEncoding = Literal["version", "base64", "plain", "any"]


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
    one_shot_capacity: int = 100_000
    # Serve HTTPS with this certificate chain and key (PEM), as real partners do.
    tls_cert: Path | None = None
    tls_key: Path | None = None

    @property
    def effective_default_limit(self) -> int:
        """Page size when the client sends no `limit`."""
        return self.max_limit if self.default_limit is None else self.default_limit
