"""`ocpi-puller verify --pull-id ID`: what a pull left in Kafka, and (with `--against-partner`)
whether every key the partner lists within the pull's snapshot bounds is there.

The pull's plan records on `<prefix>.checkpoints` say which partner modules it pulled and their
bounds (`date_from`, the pinned `date_to`, the windows). Kafka side: its messages found by their
`pull-id` header (distinct keys, duplicates, tombstones, dead letters). Partner side: every window
listed again through the page driver (fetch only). Missing = listed by the partner, but neither
in Kafka from this pull (or from a later pull that replaced its message) nor dead-lettered.
Exit 0 only when nothing is missing (without `--against-partner`: when the plan is complete).
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from yarl import URL

from producer import partners
from producer.commands.outcome import Outcome, SettingsOf, execute, kafka_errors
from producer.commands.partner import partner_session
from producer.config import PullSettings, PullTarget
from producer.errors import ConfigError, IncompletePullError, PullError
from producer.kafka.checkpoints import StoredPull, find_pull
from producer.kafka.connection import KafkaConnection
from producer.kafka.inventory import PullInventory, take_inventory
from producer.ocpi.http.discovery import discover
from producer.ocpi.paging.repair import LinkRepair
from producer.ocpi.planning.listing import Listing, list_keys
from producer.pull.assembly import DEFAULT_LIMIT
from producer.pull.plan import CLOCK_MARGIN_MS
from schemas.keys import PartnerIdentity
from schemas.records import PullPlan

SAMPLE = 10  # keys shown of what is missing or unexpected


def run(args: argparse.Namespace, settings_of: SettingsOf) -> int:
    """Entry point of `ocpi-puller verify`."""

    async def work() -> Outcome:
        return await verify(settings_of(args), against_partner=bool(args.against_partner))

    return execute("verify", args, work)


@dataclass(slots=True)
class PullInKafka:
    """One partner module of the pull: its plan and what it left in Kafka."""

    plan: PullPlan
    inventory: PullInventory


async def read_pull(
    connection: KafkaConnection,
    prefix: str,
    pull_id: str,
    *,
    partner: str | None = None,
    module: str | None = None,
) -> list[PullInKafka]:
    """The pull's plans (one per partner module) and its messages, from Kafka."""
    topic = f"{prefix}.checkpoints"
    with kafka_errors(connection, "read checkpoints from"):
        stored = await find_pull(connection, topic, pull_id)
    stored = [
        s
        for s in stored
        if (partner is None or s.partner == partner) and (module is None or s.module == module)
    ]
    plans = [s.state.plan for s in stored if s.state.plan is not None]
    if not plans:
        raise ConfigError(_no_plan(pull_id, topic, stored))
    since = [
        ((s.partner, s.module), run_began_ms(s.state.plan, s.state.reset_at))
        for s in stored
        if s.state.plan is not None
    ]
    with kafka_errors(connection, "read the pull's messages from"):
        found = await take_inventory(connection, prefix, pull_id, since)
    return [PullInKafka(p, found[(p.partner, p.module)]) for p in plans]


def run_began_ms(plan: PullPlan, reset_at: datetime | None) -> int:
    """From when a pull's messages belong to its latest run: its plan (give or take the clocks
    of the hosts that wrote them), never before the pull id was last reset."""
    began = int(plan.created_at.timestamp() * 1000) - CLOCK_MARGIN_MS
    if reset_at is not None:
        began = max(began, int(reset_at.timestamp() * 1000))
    return began


def _no_plan(pull_id: str, topic: str, stored: list[StoredPull]) -> str:
    resets = [s.state.reset for s in stored if s.state.reset is not None]
    if resets:
        at = f"{resets[0].reset_at:%Y-%m-%d %H:%M:%S}Z"
        return f"pull {pull_id} was reset at {at}: nothing to verify"
    return f"no plan of pull {pull_id} on {topic}: check --pull-id and --topic-prefix"


async def verify(settings: PullSettings, *, against_partner: bool) -> Outcome:
    """Verify the pull `--pull-id` (every partner module it pulled, or those of `--partner` and
    `--module`)."""
    if settings.pull_id is None:
        raise ConfigError("verify needs --pull-id (or OCPI_PULLER_PULL_ID)")
    pulls = await read_pull(
        settings.kafka_connection(),
        settings.topic_prefix,
        settings.pull_id,
        partner=settings.partner,
        module=settings.module,
    )
    listings: list[Listing | None] = [None] * len(pulls)
    if against_partner:
        targets = _targets_for(settings, [p.plan for p in pulls])
        for i, (pull, target) in enumerate(zip(pulls, targets, strict=True)):
            listings[i] = await list_partner(target, settings, pull.plan)
    reports = [judge(p, listing) for p, listing in zip(pulls, listings, strict=True)]
    failures = [failure for _, _, failure in reports if failure is not None]
    worst = max(failures, key=lambda f: f.exit_code, default=None)
    fields = {
        "pull_id": settings.pull_id,
        "complete": not failures,
        "pulls": [fields for fields, _, _ in reports],
    }
    return Outcome(fields, [line for _, text, _ in reports for line in text], worst)


def _targets_for(settings: PullSettings, plans: list[PullPlan]) -> list[PullTarget]:
    """The partner connection of each plan: from `--partners` by name, or `--url` (which then
    stands for the pull's one partner, whatever name its host would give)."""
    targets = partners.targets(settings)
    if settings.partners_file is None and settings.partner is None:
        names = {p.partner for p in plans}
        if len(names) > 1:
            raise ConfigError(
                f"the pull has {len(names)} partners: give --partners, or --partner to "
                "verify one of them"
            )
        targets = [t.model_copy(update={"partner": plans[0].partner}) for t in targets]
    chosen = []
    for plan in plans:
        match = [
            t for t in targets if t.partner == plan.partner and t.module in (None, plan.module)
        ]
        if not match:
            raise ConfigError(f"--against-partner: no partner {plan.partner} with {plan.module}")
        chosen.append(match[0])
    return chosen


async def list_partner(target: PullTarget, settings: PullSettings, plan: PullPlan) -> Listing:
    """The partner's keys within the plan's windows (its version, its snapshot bounds)."""
    options = target.options
    identity = None
    if target.partner_country and target.partner_party:
        identity = PartnerIdentity(target.partner_country.upper(), target.partner_party.upper())
    if plan.ocpi_version.startswith("2.1") and identity is None:
        raise ConfigError(
            "OCPI 2.1.1 objects carry no country_code/party_id: give --partner-country and "
            "--partner-party so their keys can be built"
        )
    async with partner_session(target, settings) as http:
        endpoint = await discover(http, URL(target.url), plan.module, plan.ocpi_version)
        return await list_keys(
            http,
            endpoint,
            plan.windows,
            limit=options.limit or DEFAULT_LIMIT,
            identity=identity,
            parallel=options.most_in_flight,
            fanout=options.fanout,
            probe_past_end=options.probe_past_end,
            repair=LinkRepair.from_setting(options.link_repair),
            validation=options.validation,
        )


def judge(
    pull: PullInKafka, listing: Listing | None
) -> tuple[dict[str, Any], list[str], PullError | None]:
    """One partner module's report: JSON fields, text lines, and its failure (if any)."""
    plan, inv = pull.plan, pull.inventory
    scope = f"{plan.partner}/{plan.module}"
    fields: dict[str, Any] = {
        "partner": plan.partner,
        "module": plan.module,
        "ocpi_version": plan.ocpi_version,
        "date_from": None if plan.date_from is None else plan.date_from.isoformat(),
        "date_to": plan.date_to.isoformat(),
        "plan_completed": plan.completed,
        "expected": sum(w.expected for w in plan.windows),
        "messages": inv.messages,
        "distinct_keys": len(inv.keys),
        "duplicates": inv.duplicates,
        "tombstones": inv.tombstones,
        "dead_letters": inv.dead_letters,
        "against_partner": listing is not None,
    }
    text = [
        f"pull {plan.pull_id}: {scope} (OCPI {plan.ocpi_version}), last_updated "
        f"{fields['date_from'] or 'from the beginning'} to {fields['date_to']}, "
        f"plan {'complete' if plan.completed else 'NOT complete'}",
        f"  in Kafka: {inv.messages:,} messages, {len(inv.keys):,} distinct keys, "
        f"{inv.duplicates:,} duplicates, {inv.tombstones:,} tombstones, "
        f"{inv.dead_letters:,} dead letters",
    ]
    failure: PullError | None = None
    if listing is None:
        if not plan.completed:
            failure = IncompletePullError(
                f"{scope}: the pull is not complete (resume it with the same --pull-id), or "
                "check it with --against-partner"
            )
        return fields, text, failure
    compared = _compare(inv, listing)
    fields.update(compared)
    text.append(
        f"  at the partner: {len(listing.keys):,} keys"
        f"{'' if listing.complete else ' (listing INCOMPLETE)'}; missing: "
        f"{compared['missing']:,}; unexpected: {compared['unexpected']:,}; replaced by later "
        f"pulls: {compared['superseded']:,}"
    )
    if compared["missing"]:
        text.append(f"  missing, e.g.: {', '.join(compared['missing_sample'])}")
        failure = IncompletePullError(
            f"{scope}: {compared['missing']} keys the partner lists are not in Kafka"
        )
    elif not listing.complete:
        failure = IncompletePullError(
            f"{scope}: the partner's listing fell short in windows {listing.short_windows}: "
            "not every key could be checked; run verify again"
        )
    return fields, text, failure


def _compare(inv: PullInventory, listing: Listing) -> dict[str, Any]:
    accounted = inv.keys | inv.dead_keys
    not_ours = listing.keys - accounted
    missing = not_ours - inv.later_keys
    unexpected = inv.keys - listing.keys
    return {
        "partner_keys": len(listing.keys),
        "partner_keyless": listing.keyless,
        "listing_complete": listing.complete,
        "short_windows": listing.short_windows,
        "missing": len(missing),
        "missing_sample": sorted(missing)[:SAMPLE],
        "unexpected": len(unexpected),
        "unexpected_sample": sorted(unexpected)[:SAMPLE],
        "superseded": len(not_ours & inv.later_keys),
    }
