"""What Apache Kafka does about transactions and noida-db does not: the broker's
`transaction.max.timeout.ms` caps the transaction timeout a pull asks for (`--transaction-ms` +
60 s), and a pull asking more is refused at start with one line naming `--transaction-ms`; a
transaction left hanging in a partition (its records there, no marker ever to come) stops
read_committed readers until a newer epoch of its producer id ends it, as each of the pull's
transactional producers does when it starts."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator

from aiokafka import AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import KafkaError

from producer.kafka.output import KafkaOutput
from producer.kafka.transactions import Transactor
from sandbox.apache_kafka.broker import ApacheKafka
from tests.brokers import only_broker
from tests.kafka.test_outbox import PARTITIONS, create_topic
from tests.kafka.test_settle import ends
from tests.support import TOKEN, run_cli, sandbox

pytestmark = only_broker(
    "apache", reason="noida-db has no transaction.max.timeout.ms and no partition verification"
)

BROKER_MAX_MS = 900_000  # Apache Kafka's default transaction.max.timeout.ms


async def test_a_transaction_longer_than_the_broker_allows_is_refused_at_start(
    broker: ApacheKafka, prefix: str
) -> None:
    assert "transaction.max.timeout.ms" not in broker.properties  # the default holds
    async with sandbox(sizes={"tokens": 200}) as (base, _):
        code, out, err = await run_cli(
            "pull", "--url", f"{base}/ocpi/versions", "--module", "tokens", "--partner", "sbx",
            "--bootstrap-servers", broker.bootstrap, "--topic-prefix", prefix,
            "--pull-id", "long", "--delivery", "exactly-once",
            "--transaction-ms", str(BROKER_MAX_MS), "--output", "json", "--no-progress-bar",
            env={"OCPI_PULLER_TOKEN": TOKEN},
        )  # fmt: skip
    assert code == 2, err[-2000:]
    (line,) = err.strip().splitlines()
    assert "--transaction-ms 900000" in line
    assert "transaction.max.timeout.ms" in line
    assert "Traceback" not in err
    summary = json.loads(out.splitlines()[-1])
    assert summary["error_kind"] == "config"
    assert not summary["objects_emitted"]

    # Just under the cap is accepted.
    async with sandbox(sizes={"tokens": 200}) as (base, _):
        code, out, err = await run_cli(
            "pull", "--url", f"{base}/ocpi/versions", "--module", "tokens", "--partner", "sbx",
            "--bootstrap-servers", broker.bootstrap, "--topic-prefix", prefix,
            "--pull-id", "short", "--delivery", "exactly-once",
            "--transaction-ms", str(BROKER_MAX_MS - 60_000), "--transaction-pages", "1",
            "--output", "json", "--no-progress-bar", env={"OCPI_PULLER_TOKEN": TOKEN},
        )  # fmt: skip
    assert code == 0, err[-2000:]
    assert json.loads(out.splitlines()[-1])["objects_emitted"] == 200


@contextlib.asynccontextmanager
async def partition_verification_off(bootstrap: str) -> AsyncIterator[None]:
    """The broker appends a transaction's records to a partition its coordinator was never told
    of (KIP-890's check off): how a transaction is made to hang on demand."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()

    key = "transaction.partition.verification.enable"

    async def verification(enabled: str) -> None:
        await admin.alter_configs([ConfigResource(ConfigResourceType.BROKER, "1", {key: enabled})])
        # A dynamic broker config reaches the broker through the metadata log, a moment later:
        # wait until the broker itself reports it (a produce before then is still verified).
        async with asyncio.timeout(30):
            while await broker_value(key) != enabled:
                await asyncio.sleep(0.1)

    async def broker_value(name: str) -> str | None:
        responses = await admin.describe_configs([ConfigResource(ConfigResourceType.BROKER, "1")])
        for response in responses:
            for *_, entries in response.resources:
                for entry in entries:
                    if entry[0] == name:
                        return str(entry[1]).lower()
        return None

    try:
        await verification("false")
        yield
    finally:
        await verification("true")
        await admin.close()


async def leave_hanging(bootstrap: str, transactional_id: str, topic: str) -> None:
    """A record in a transaction of `transactional_id` on partition 0 of `topic` that its
    coordinator ends without a marker there (as when it skips a partition without a leader)."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, transactional_id=transactional_id)
    await producer.start()
    try:
        await producer.begin_transaction()
        # Taken as added, so aiokafka sends no AddPartitionsToTxn for it.
        producer._txn_manager._txn_partitions.add(TopicPartition(topic, 0))
        await (await producer.send(topic, b"hanging", key=b"hanging", partition=0))
        with contextlib.suppress(KafkaError):
            await producer.commit_transaction()  # the coordinator ends it; partition 0 never hears
    finally:
        await producer.stop()


async def test_a_transaction_left_hanging_is_ended_when_a_producer_of_its_id_starts(
    broker: ApacheKafka, prefix: str
) -> None:
    topic, tid = f"{prefix}.tokens", f"{prefix}.hanging"
    await create_topic(broker.bootstrap, topic)
    async with partition_verification_off(broker.bootstrap):
        await leave_hanging(broker.bootstrap, tid, topic)
    high, stable = await ends(broker.bootstrap, topic)
    assert (high[0], stable[0]) == (1, 0)  # read_committed readers stop before the record
    kafka = KafkaOutput(broker.bootstrap, partitions=PARTITIONS, deadline_s=30.0)
    await kafka.start()
    transactor = Transactor(kafka, tid, topics=[topic])
    try:
        await transactor.start()
        high, stable = await ends(broker.bootstrap, topic)
        assert stable == high  # ended: every partition readable to its end
    finally:
        await transactor.stop()
        await kafka.stop()
