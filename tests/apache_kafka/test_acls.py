"""Least privilege under Apache Kafka's StandardAuthorizer: a principal with exactly the ACLs
docs/deployment.md lists (read from that page) can pull, at least once and exactly once, and read
`status` and `verify`; without any one of them the pull stops at start with one line naming the
missing permission, having written no object."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from confluent_kafka.admin import (
    AclBinding,
    AclOperation,
    AclPermissionType,
    AdminClient,
    ResourcePatternType,
    ResourceType,
)

from sandbox.apache_kafka.broker import USERS, ApacheKafka
from tests.brokers import only_broker
from tests.kafka_read import records
from tests.support import TOKEN, run_cli, sandbox

pytestmark = only_broker("apache", reason="noida-db has no authorizer")

DEPLOYMENT = Path(__file__).resolve().parents[2] / "docs" / "deployment.md"
ROW = re.compile(
    r"^\| (Topic|TransactionalId|Group|Cluster) \| `<prefix>\.` \(prefixed\) \| (\w+) \|"
)


def documented_acls() -> list[tuple[str, str]]:
    """(resource, operation) of every row of the ACL table in docs/deployment.md."""
    rows = [m.groups() for m in map(ROW.match, DEPLOYMENT.read_text().splitlines()) if m]
    assert rows, "docs/deployment.md lists no ACLs"
    return rows


def grant(broker: ApacheKafka, prefix: str, acls: list[tuple[str, str]]) -> None:
    """The ACLs for User:limited on `<prefix>.`, made by a super user."""
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    resources = {"Topic": ResourceType.TOPIC, "TransactionalId": ResourceType.TRANSACTIONAL_ID}
    bindings = [
        AclBinding(
            resources[resource],
            f"{prefix}.",
            ResourcePatternType.PREFIXED,
            "User:limited",
            "*",
            AclOperation[operation],
            AclPermissionType.ALLOW,
        )
        for resource, operation in acls
    ]
    for created in admin.create_acls(bindings).values():
        created.result()


def limited_flags(broker: ApacheKafka, prefix: str) -> tuple[list[str], dict[str, str]]:
    flags = [
        "--bootstrap-servers", broker.address("SASL_PLAINTEXT"), "--topic-prefix", prefix,
        "--kafka-security-protocol", "SASL_PLAINTEXT", "--kafka-sasl-mechanism", "SCRAM-SHA-512",
        "--kafka-sasl-username", "limited", "--output", "json",
    ]  # fmt: skip
    return flags, {"OCPI_PULLER_KAFKA_SASL_PASSWORD": USERS["limited"]}


async def pull_as_limited(
    broker: ApacheKafka, prefix: str, delivery: str
) -> tuple[int, dict[str, object], str]:
    flags, env = limited_flags(broker, prefix)
    async with sandbox(sizes={"tokens": 400}, max_limit=100) as (base, _):
        code, out, err = await run_cli(
            "pull", "--url", f"{base}/ocpi/versions", "--module", "tokens", "--partner", "sbx",
            "--pull-id", "least", "--delivery", delivery, "--no-progress-bar",
            "--kafka-connect-timeout-s", "30", *flags,
            env={**env, "OCPI_PULLER_TOKEN": TOKEN},
        )  # fmt: skip
    lines = [line for line in out.splitlines() if line.startswith("{")]
    return code, json.loads(lines[-1]) if lines else {}, err


@pytest.mark.parametrize("delivery", ["at-least-once", "exactly-once"])
async def test_exactly_the_documented_acls_are_enough(
    broker: ApacheKafka, prefix: str, delivery: str
) -> None:
    grant(broker, prefix, documented_acls())
    code, summary, err = await pull_as_limited(broker, prefix, delivery)
    assert code == 0, err[-2000:]
    assert summary["objects_emitted"] == 400
    flags, env = limited_flags(broker, prefix)
    code, _, err = await run_cli("status", *flags, env=env)
    assert code == 0, err[-2000:]
    code, _, err = await run_cli("verify", "--pull-id", "least", *flags, env=env)
    assert code == 0, err[-2000:]


def cases() -> list[tuple[str, tuple[str, str]]]:
    """Each documented ACL, removed in turn, with the delivery that needs it."""
    return [
        ("exactly-once" if resource == "TransactionalId" else "at-least-once", (resource, op))
        for resource, op in documented_acls()
    ]


@pytest.mark.parametrize(
    ("delivery", "removed"), cases(), ids=lambda v: "-".join(v) if isinstance(v, tuple) else v
)
async def test_without_any_one_the_pull_stops_at_start_naming_it(
    broker: ApacheKafka, prefix: str, delivery: str, removed: tuple[str, str]
) -> None:
    grant(broker, prefix, [acl for acl in documented_acls() if acl != removed])
    code, summary, err = await pull_as_limited(broker, prefix, delivery)
    assert code == 6, err[-2000:]
    (line,) = err.strip().splitlines()
    # Before the pull starts, or as the pull's own failure (`<partner>/<module>: `).
    assert re.match(r"ocpi-puller: (\S+/\S+: )?kafka_auth: ", line), line
    resource, operation = removed
    assert f"lacks {operation} on {'topic' if resource == 'Topic' else resource}" in line, line
    assert "Traceback" not in err
    assert USERS["limited"] not in err
    assert not summary.get("objects_emitted")
    # Nothing of the pull reached a consumer.
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    if f"{prefix}.tokens" in admin.list_topics(timeout=10).topics:
        assert await records(broker.bootstrap, f"{prefix}.tokens") == []
