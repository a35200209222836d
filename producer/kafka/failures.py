"""What a Kafka failure means for the puller: worth waiting for or final, a lost producer
identity, and how a wait is reported."""

from __future__ import annotations

from dataclasses import dataclass

from aiokafka.errors import (
    InvalidProducerEpoch,
    InvalidProducerIdMapping,
    KafkaError,
    KafkaTimeoutError,
    OutOfOrderSequenceNumber,
    ProducerFenced,
    UnknownProducerId,
)

# The broker no longer knows this producer (e.g. it restarted without its producer state): only a
# new producer, with a new id, can produce again.
PRODUCER_IDENTITY_LOST = (
    OutOfOrderSequenceNumber,
    UnknownProducerId,
    InvalidProducerEpoch,
    InvalidProducerIdMapping,
    ProducerFenced,
)


def worth_waiting_for(error: BaseException) -> bool:
    """Whether the broker may yet accept: retriable Kafka errors, timeouts, a lost connection, or
    a lost producer identity (renewed). Anything else (authorization, a record too large, a bad
    configuration) fails the same way again."""
    if isinstance(error, (TimeoutError, OSError, KafkaTimeoutError, *PRODUCER_IDENTITY_LOST)):
        return True
    return isinstance(error, KafkaError) and bool(getattr(error, "retriable", False))


@dataclass(frozen=True, slots=True)
class KafkaWait:
    """The broker did not acknowledge (or acknowledged late): `wait_s` waited or to wait."""

    topic: str
    attempt: int
    wait_s: float
    reason: str


def describe_failure(error: BaseException) -> str:
    name, text = type(error).__name__, str(error)
    return (text if text.startswith(name) else f"{name}: {text}")[:200]
