"""`ocpi-puller discover --url VERSIONS_URL`: the versions a partner offers, the one a pull would
choose and why, and every endpoint of that version with its role (the ones `pull` would fetch
from marked). Reads nothing from Kafka and writes nothing."""

from __future__ import annotations

import argparse
from typing import Any

from yarl import URL

from producer import partners
from producer.commands.outcome import Outcome, SettingsOf, execute
from producer.commands.partner import partner_session
from producer.config import PullSettings
from producer.errors import ConfigError
from producer.ocpi.http.discovery import describe_offer
from producer.ocpi.protocol.modules import MODULES, VERSION_PREFERENCE
from producer.ocpi.protocol.versions import PartnerOffer


def run(args: argparse.Namespace, settings_of: SettingsOf) -> int:
    """Entry point of `ocpi-puller discover`."""

    async def work() -> Outcome:
        return await discover(settings_of(args))

    return execute("discover", args, work)


async def discover(settings: PullSettings) -> Outcome:
    """Versions discovery against the partner at `--url`, reported in full."""
    if settings.url is None:
        raise ConfigError("--url (or OCPI_PULLER_URL) is required: the partner's versions URL")
    (target,) = partners.targets(settings)
    url = URL(target.url)
    if url.path.rstrip("/").rsplit("/", 1)[-1] in MODULES:
        raise ConfigError(
            "discover needs the partner's versions URL (…/ocpi/versions), not a module endpoint"
        )
    async with partner_session(target, settings) as http:
        offer = await describe_offer(http, url, target.ocpi_version)
        shown_url = http.redact(url)
    return Outcome(offer_fields(shown_url, offer), offer_text(shown_url, offer), offer.failure)


def offer_fields(url: str, offer: PartnerOffer) -> dict[str, Any]:
    """The JSON line's fields."""
    return {
        "url": url,
        "versions": [
            {"version": v, "url": u, "spoken": v in VERSION_PREFERENCE}
            for v, u in offer.versions.items()
        ],
        "chosen": offer.chosen,
        "reason": offer.reason,
        "endpoints": [
            {"identifier": e.identifier, "role": e.role, "url": e.url, "pulled": e.pulled}
            for e in offer.endpoints
        ],
        "pullable": [e.identifier for e in offer.endpoints if e.pulled],
    }


def offer_text(url: str, offer: PartnerOffer) -> list[str]:
    """The text report: plain lines, never cut (URLs are as long as they are)."""
    lines = [f"versions offered at {url}:"]
    width = max((len(v) for v in offer.versions), default=0)
    lines += [
        f"  {v:<{width}}  {u}{'' if v in VERSION_PREFERENCE else '  (not spoken by ocpi-puller)'}"
        for v, u in offer.versions.items()
    ] or ["  (none)"]
    lines.append(f"chosen: {offer.chosen or 'none'}: {offer.reason}")
    if offer.chosen is None:
        return lines
    lines.append(f"endpoints of {offer.chosen}:")
    name_w = max((len(e.identifier) for e in offer.endpoints), default=0)
    role_w = max((len(e.role or "-") for e in offer.endpoints), default=0)
    url_w = max((len(e.url) for e in offer.endpoints if e.pulled), default=0)
    for e in offer.endpoints:
        mark = f"{e.url:<{url_w}}  <- pull --module {e.identifier}" if e.pulled else e.url
        lines.append(f"  {e.identifier:<{name_w}}  {e.role or '-':<{role_w}}  {mark}")
    missing = [m for m in MODULES if m not in {e.identifier for e in offer.endpoints if e.pulled}]
    if missing:
        lines.append(f"not offered to pull: {', '.join(missing)}")
    return lines
