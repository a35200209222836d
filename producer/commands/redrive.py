"""`ocpi-puller redrive --pull-id ID`: that pull's dead letters, validated again under the current
models and `--validation`; those that now pass are produced to their object topic (the same key,
the headers a pull gives, plus `redrive-id`), the rest stay. `--dry-run` only counts.

A letter whose key was written to the object topic after it failed (by a later pull, or an
earlier redrive) is superseded and left: producing the old object again would replace the newer
one on a compacted topic, and a second redrive of the same pull produces nothing twice. With
`--delivery exactly-once` everything produced is one Kafka transaction, under a transactional id
of the pull's own (`<prefix>.redrive.<pull id>`: two redrives of one pull fence each other).
"""

from __future__ import annotations

import argparse
from collections import defaultdict
from typing import Any

from producer.commands.outcome import Outcome, SettingsOf, execute, kafka_errors
from producer.config import PullSettings
from producer.errors import ConfigError, KafkaUnavailableError
from producer.kafka.checkpoints import find_pull
from producer.kafka.consume import read_topic
from producer.kafka.deadletters import keys_written_since, read_dead_letters
from producer.kafka.output import KafkaOutput
from producer.kafka.records import OutMessage
from producer.kafka.transactions import CommitUnsure, Transactor
from producer.pull.redrive import Redriven, Verdicts, judge, needs_identity, new_redrive_id
from schemas import headers as h
from schemas.keys import PartnerIdentity

COMMIT_ATTEMPTS = 3


def run(args: argparse.Namespace, settings_of: SettingsOf) -> int:
    """Entry point of `ocpi-puller redrive`."""

    async def work() -> Outcome:
        return await redrive(settings_of(args), dry_run=bool(args.dry_run))

    return execute("redrive", args, work)


async def redrive(settings: PullSettings, *, dry_run: bool) -> Outcome:
    """Redrive the dead letters of `--pull-id` (those of `--partner`/`--module` only)."""
    pull_id = settings.pull_id
    if pull_id is None:
        raise ConfigError("redrive needs --pull-id (or OCPI_PULLER_PULL_ID)")
    connection = settings.kafka_connection()
    topic = f"{settings.topic_prefix}.deadletter"
    with kafka_errors(connection, "read dead letters from"):
        records = [
            r
            for r in await read_dead_letters(connection, topic, pull_id)
            if _in_scope(r, settings.partner, settings.module)
        ]
        if not records:
            await _known_pull(settings, pull_id)
    identity = _identity(settings, records)
    redrive_id = new_redrive_id()
    verdicts = judge(records, pull_id=pull_id, redrive_id=redrive_id,
                     validation=settings.validation, identity=identity)  # fmt: skip
    with kafka_errors(connection, "read the object topics from"):
        fresh, superseded = await _not_superseded(settings, verdicts.passing)
    if fresh and not dry_run:
        await _produce(settings, pull_id, [(f"{settings.topic_prefix}.{r.module}", r.message)
                                           for r in fresh])  # fmt: skip
    return _outcome(settings, pull_id, redrive_id, verdicts, fresh, superseded, dry_run)


def _in_scope(record: Any, partner: str | None, module: str | None) -> bool:
    headers = dict(record.headers or ())
    return (partner is None or headers.get(h.PARTNER) == partner.encode()) and (
        module is None or headers.get(h.OCPI_MODULE) == module.encode()
    )


async def _known_pull(settings: PullSettings, pull_id: str) -> None:
    """No dead letters: fine for a pull that exists; a pull id nobody knows is a typo."""
    topic = f"{settings.topic_prefix}.checkpoints"
    if not await find_pull(settings.kafka_connection(), topic, pull_id):
        raise ConfigError(
            f"no pull {pull_id} on {topic} and no dead letters of it: check --pull-id and "
            "--topic-prefix"
        )


def _identity(settings: PullSettings, records: list[Any]) -> PartnerIdentity | None:
    if settings.partner_country and settings.partner_party:
        return PartnerIdentity(settings.partner_country.upper(), settings.partner_party.upper())
    if needs_identity(records):
        raise ConfigError(
            "OCPI 2.1.1 objects carry no country_code/party_id: give --partner-country and "
            "--partner-party so their keys can be built"
        )
    return None


async def _not_superseded(
    settings: PullSettings, passing: list[Redriven]
) -> tuple[list[Redriven], list[Redriven]]:
    """Split what passes into what to produce and what a later write of its key superseded."""
    by_module: dict[str, list[Redriven]] = defaultdict(list)
    for item in passing:
        by_module[item.module].append(item)
    fresh: list[Redriven] = []
    superseded: list[Redriven] = []
    for module, items in by_module.items():
        since = min(item.failed_at_ms for item in items)
        written = await keys_written_since(
            settings.kafka_connection(),
            f"{settings.topic_prefix}.{module}",
            since,
            (item.message.key for item in items),
        )
        for item in items:
            later = written.get(item.message.key, 0) >= item.failed_at_ms
            (superseded if later else fresh).append(item)
    return fresh, superseded


async def _produce(
    settings: PullSettings, pull_id: str, records: list[tuple[str, OutMessage]]
) -> None:
    kafka = KafkaOutput(
        settings.kafka_connection(),
        client_id="ocpi-puller-redrive",
        partitions=settings.topic_partitions,
        replication_factor=settings.replication_factor,
        deadline_s=settings.kafka_deadline_s,
        connect_timeout_s=settings.kafka_connect_timeout_s,
        request_timeout_ms=int(settings.kafka_request_timeout_s * 1000),
    )
    await kafka.start()
    try:
        if settings.delivery != "exactly-once":
            by_topic: dict[str, list[OutMessage]] = defaultdict(list)
            for topic, message in records:
                by_topic[topic].append(message)
            for topic, messages in by_topic.items():
                await kafka.send_and_wait(topic, messages)
            return
        await _commit(kafka, f"{settings.topic_prefix}.redrive.{pull_id}", records, settings)
    finally:
        await kafka.stop()


async def _commit(
    kafka: KafkaOutput,
    transactional_id: str,
    records: list[tuple[str, OutMessage]],
    settings: PullSettings,
) -> None:
    """Every record in one transaction. A commit whose fate is unknown is settled by a new
    producer of the same id, then found out from a committed read of the redrive's records."""
    transactor = Transactor(kafka, transactional_id,
                            connect_timeout_s=settings.kafka_connect_timeout_s)  # fmt: skip
    await transactor.start()
    try:
        for _attempt in range(COMMIT_ATTEMPTS):
            try:
                await transactor.commit(records)
                return
            except CommitUnsure:
                await transactor.renew()
                if await _committed(settings, records):
                    return
        raise KafkaUnavailableError(
            f"Kafka at {kafka.bootstrap} did not commit the redrive in {COMMIT_ATTEMPTS} attempts"
        )
    finally:
        await transactor.stop()


async def _committed(settings: PullSettings, records: list[tuple[str, OutMessage]]) -> bool:
    """Whether the redrive's first record is there for read_committed consumers."""
    topic, first = records[0]
    mark = dict(first.headers)[h.REDRIVE_ID]
    async for record in read_topic(
        settings.kafka_connection(), topic, isolation_level="read_committed"
    ):
        if record.key == first.key and dict(record.headers or ()).get(h.REDRIVE_ID) == mark:
            return True
    return False


def _outcome(
    settings: PullSettings,
    pull_id: str,
    redrive_id: str,
    verdicts: Verdicts,
    fresh: list[Redriven],
    superseded: list[Redriven],
    dry_run: bool,
) -> Outcome:
    topics = [f"{settings.topic_prefix}.{m}" for m in sorted({r.module for r in fresh})]
    fields: dict[str, Any] = {
        "pull_id": pull_id,
        "redrive_id": redrive_id,
        "dry_run": dry_run,
        "delivery": settings.delivery,
        "dead_letters": verdicts.read,
        "distinct": verdicts.latest,
        "redriven": len(fresh),
        "still_invalid": len(verdicts.still_invalid),
        "superseded": len(superseded),
        "unusable": verdicts.unusable,
        "topics": topics,
        "still_invalid_sample": verdicts.sample(),
    }
    moved = "would move" if dry_run else "moved"
    text = [
        f"redrive {redrive_id} of pull {pull_id}: {verdicts.read:,} dead letters "
        f"({verdicts.latest:,} distinct)",
        f"  {moved}: {len(fresh):,} now valid"
        + (f", to {', '.join(topics)}" if fresh else "")
        + (f" ({settings.delivery})" if fresh and not dry_run else ""),
        f"  left: {len(verdicts.still_invalid):,} still invalid, {len(superseded):,} superseded "
        f"by a later write of their key, {verdicts.unusable:,} unusable",
    ]
    text += [f"  still invalid, e.g. {line}" for line in verdicts.sample()]
    return Outcome(fields, text)
