"""What Apache Kafka enforces about transactions and noida-db does not: the broker's
`transaction.max.timeout.ms` caps the transaction timeout a pull asks for (`--transaction-ms` +
60 s), and a pull asking more is refused at start with one line naming `--transaction-ms`."""

from __future__ import annotations

import json

from sandbox.apache_kafka.broker import ApacheKafka
from tests.brokers import only_broker
from tests.support import TOKEN, run_cli, sandbox

pytestmark = only_broker("apache", reason="noida-db has no transaction.max.timeout.ms")

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
