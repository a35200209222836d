"""`ocpi-puller reset --pull-id ID`: void a pull's checkpoints so the same id starts afresh.

For every partner module of the pull (or those of `--partner`/`--module`), tombstones go to its
window records and a `PullReset` record under its plan's key (schemas/records.py); the next pull
with that id finds no plan and plans anew, instead of resuming or reporting "already complete".
Objects already in Kafka stay. On a terminal, nothing is written without `--yes`.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from producer.commands.outcome import Outcome, SettingsOf, execute, kafka_errors
from producer.config import PullSettings
from producer.errors import ConfigError
from producer.kafka.checkpoints import CheckpointStore, StoredPull, find_pull
from producer.kafka.output import KafkaOutput
from schemas.records import PullReset


def run(args: argparse.Namespace, settings_of: SettingsOf) -> int:
    """Entry point of `ocpi-puller reset`."""

    async def work() -> Outcome:
        confirmed = bool(args.yes) or not sys.stdin.isatty()
        return await reset(settings_of(args), confirmed=confirmed)

    return execute("reset", args, work)


def _describe(s: StoredPull) -> str:
    plan = s.state.plan
    if plan is None:
        return f"{s.partner}/{s.module} ({len(s.state.windows)} window records, no plan)"
    state = "complete" if plan.completed else "not complete"
    return f"{s.partner}/{s.module} (plan of {len(plan.windows)} windows, {state})"


async def reset(settings: PullSettings, *, confirmed: bool) -> Outcome:
    """Reset the pull `--pull-id`; `confirmed` is False on a terminal without `--yes`."""
    pull_id = settings.pull_id
    if pull_id is None:
        raise ConfigError("reset needs --pull-id (or OCPI_PULLER_PULL_ID)")
    connection = settings.kafka_connection()
    topic = f"{settings.topic_prefix}.checkpoints"
    with kafka_errors(connection, "read checkpoints from"):
        stored = await find_pull(connection, topic, pull_id)
    stored = [
        s
        for s in stored
        if (settings.partner is None or s.partner == settings.partner)
        and (settings.module is None or s.module == settings.module)
    ]
    if not stored:
        raise ConfigError(f"no pull {pull_id} on {topic}: check --pull-id and --topic-prefix")
    voided = [s for s in stored if s.state.plan is not None or s.state.windows]
    if voided and not confirmed:
        what = "; ".join(_describe(s) for s in voided)
        raise ConfigError(
            f"reset would discard the checkpoints of pull {pull_id}: {what}; add --yes to do it"
        )
    resets = await _write_resets(settings, topic, pull_id, voided) if voided else []
    already = [s.state.reset for s in stored if s not in voided and s.state.reset is not None]
    return Outcome(
        {
            "pull_id": pull_id,
            "reset": [_fields(r) for r in resets],
            "already_reset": [_fields(r) for r in already],
        },
        _text(pull_id, resets, already),
    )


async def _write_resets(
    settings: PullSettings, topic: str, pull_id: str, voided: list[StoredPull]
) -> list[PullReset]:
    kafka = KafkaOutput(
        settings.kafka_connection(),
        partitions=settings.topic_partitions,
        replication_factor=settings.replication_factor,
        deadline_s=settings.kafka_deadline_s,
        connect_timeout_s=settings.kafka_connect_timeout_s,
        request_timeout_ms=int(settings.kafka_request_timeout_s * 1000),
    )
    await kafka.start()
    try:
        resets = []
        for s in voided:
            store = CheckpointStore(kafka, topic, s.partner, s.module)
            resets.append(await store.reset(pull_id, s.state))
        return resets
    finally:
        await kafka.stop()


def _fields(r: PullReset) -> dict[str, Any]:
    return {
        "partner": r.partner,
        "module": r.module,
        "reset_at": r.reset_at.isoformat(),
        "windows_cleared": r.windows_cleared,
        "plan_date_to": None if r.plan_date_to is None else r.plan_date_to.isoformat(),
        "plan_completed": r.plan_completed,
    }


def _text(pull_id: str, resets: list[PullReset], already: list[PullReset]) -> list[str]:
    lines = [
        f"reset pull {pull_id}: {r.partner}/{r.module} ({r.windows_cleared} window records "
        f"cleared; the plan was {'complete' if r.plan_completed else 'not complete'})"
        for r in resets
    ]
    lines += [
        f"pull {pull_id}: {r.partner}/{r.module} was already reset at "
        f"{r.reset_at:%Y-%m-%d %H:%M:%S}Z"
        for r in already
    ]
    lines.append(
        f"the next pull with --pull-id {pull_id} plans afresh; objects already in Kafka stay"
    )
    return lines
