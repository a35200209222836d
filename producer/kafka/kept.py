"""Did the broker keep what it acknowledged before an outage? The idempotent producer's sequence
numbers tell (a pure record of acknowledgements; no I/O).

An idempotent producer numbers its batches per partition, and the broker accepts a batch only
if it follows the last one it holds from that producer. So when, after an outage, the same
producer (same producer id) has a batch acknowledged on a partition, the broker still holds every
batch it acknowledged there before: nothing acknowledged was lost on that partition. A broker
that lost some (noida-db drops what it acknowledged while shutting down; a single-replica Kafka
whose machine crashed with unflushed pages) answers OutOfOrderSequenceNumber or
UnknownProducerId instead, and the producer is replaced: then nothing is proven.

An outage is *cleared* when every partition acknowledged within the replay window before it
has been acknowledged again by the same producer after it. Only outages not cleared call for
re-reading (`--kafka-replay-s`): against a correct broker, none.
"""

from __future__ import annotations

from dataclasses import dataclass, field

Partition = tuple[str, int]


@dataclass(slots=True)
class _Outage:
    at: float
    producer: int  # which producer was in use (KafkaOutput's generation)
    before: dict[Partition, float]  # the last acknowledgement of each partition before it
    proven: set[Partition] = field(default_factory=set)


@dataclass(slots=True)
class KeptWrites:
    """Acknowledgements per partition and producer, and the outages they clear."""

    _last: dict[Partition, tuple[float, int]] = field(default_factory=dict)
    _outages: list[_Outage] = field(default_factory=list)

    def acknowledged(self, partition: Partition, producer: int, at: float) -> None:
        """A batch of `producer` was acknowledged on `partition` at `at`."""
        self._last[partition] = (at, producer)
        for outage in self._outages:
            if at > outage.at and producer == outage.producer and partition in outage.before:
                outage.proven.add(partition)

    def outage(self, at: float, producer: int) -> None:
        """Connections broke at `at` while `producer` was in use."""
        before = {p: t for p, (t, by) in self._last.items() if by == producer and t <= at}
        self._outages.append(_Outage(at, producer, before))

    def unproven(self, outages: list[float], replay_s: float) -> list[float]:
        """Those of `outages` after which the broker has not shown that it kept everything it
        acknowledged in the `replay_s` before them."""
        left = []
        for at in outages:
            outage = next((o for o in self._outages if o.at == at), None)
            if outage is None:
                left.append(at)
                continue
            suspect = {p for p, t in outage.before.items() if t >= at - replay_s}
            if not suspect <= outage.proven:
                left.append(at)
        return left
