"""What this client may do with its topics, asked once at start (least privilege).

A topic's ACLs show only when an operation is refused, often long into a pull (a checkpoint
read at the end, a resume). Metadata v8+ answers, per topic, the operations this principal is
authorized for (KIP-430); one request at start checks that every topic the pull writes may be
written and every topic it reads back may be read, and names what is missing. A broker that
does not answer it (no Metadata v8, or no authorized-operations field) is not checked here: its
refusals still surface, one line each, when they happen. aiokafka only speaks Metadata up to v5,
so v8 is declared here.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from aiokafka.errors import IncompatibleBrokerVersion, KafkaError
from aiokafka.protocol.api import Request, RequestStruct, Response
from aiokafka.protocol.types import Array, Boolean, Int16, Int32, Schema, String

from producer.errors import KafkaAuthError
from producer.kafka.connection import KafkaConnection
from producer.kafka.diagnosis import DOCS, who
from producer.kafka.records import TopicSpec

READ, WRITE = 3, 4  # AclOperation codes: bit n of an authorized-operations field
NOT_ANSWERED = -(2**31)  # the broker did not compute the field


class MetadataResponse_v8(Response):  # type: ignore[misc]  # aiokafka is untyped
    API_KEY = 3
    API_VERSION = 8
    SCHEMA = Schema(
        ("throttle_time_ms", Int32),
        (
            "brokers",
            Array(
                ("node_id", Int32),
                ("host", String("utf-8")),
                ("port", Int32),
                ("rack", String("utf-8")),
            ),
        ),
        ("cluster_id", String("utf-8")),
        ("controller_id", Int32),
        (
            "topics",
            Array(
                ("error_code", Int16),
                ("topic", String("utf-8")),
                ("is_internal", Boolean),
                (
                    "partitions",
                    Array(
                        ("error_code", Int16),
                        ("partition", Int32),
                        ("leader", Int32),
                        ("leader_epoch", Int32),
                        ("replicas", Array(Int32)),
                        ("isr", Array(Int32)),
                        ("offline_replicas", Array(Int32)),
                    ),
                ),
                ("topic_authorized_operations", Int32),
            ),
        ),
        ("cluster_authorized_operations", Int32),
    )


class MetadataRequest_v8(RequestStruct):  # type: ignore[misc]
    API_KEY = 3
    API_VERSION = 8
    RESPONSE_TYPE = MetadataResponse_v8
    SCHEMA = Schema(
        ("topics", Array(String("utf-8"))),
        ("allow_auto_topic_creation", Boolean),
        ("include_cluster_authorized_operations", Boolean),
        ("include_topic_authorized_operations", Boolean),
    )


class AuthorizedOperationsRequest(Request[MetadataRequest_v8]):  # type: ignore[misc]
    """Metadata of some topics with the operations this principal may perform on each."""

    API_KEY = 3

    def __init__(self, topics: list[str]) -> None:
        self._topics = topics

    def build(self, request_struct_class: type[MetadataRequest_v8]) -> MetadataRequest_v8:
        return request_struct_class(self._topics, False, False, True)


def missing_permissions(specs: Sequence[TopicSpec], authorized: dict[str, int]) -> list[str]:
    """ "READ on topic x" for every operation a topic's spec needs and its field lacks (pure)."""
    missing = []
    for spec in specs:
        bits = authorized.get(spec.name, NOT_ANSWERED)
        if bits == NOT_ANSWERED:
            continue
        needed = [("WRITE", WRITE), *([("READ", READ)] if spec.read else [])]
        missing += [f"{name} on topic {spec.name}" for name, code in needed if not bits >> code & 1]
    return missing


async def check_permissions(
    client: Any, connection: KafkaConnection, specs: Sequence[TopicSpec]
) -> None:
    """Raise a KafkaAuthError naming every permission the topics lack (one request)."""
    if not specs:
        return
    try:
        node = client.get_random_node()
        response = await client.send(node, AuthorizedOperationsRequest([s.name for s in specs]))
    except (IncompatibleBrokerVersion, NotImplementedError):
        return  # no Metadata v8 here: refusals show when they happen
    except KafkaError:
        return  # not answered now: the produce path reports what it meets
    authorized = {topic[1]: topic[4] for topic in response.topics}
    missing = missing_permissions(specs, authorized)
    if missing:
        raise KafkaAuthError(
            f"Kafka at {connection.bootstrap_servers} refuses {who(connection)}: it lacks "
            f"{', '.join(missing)} ({DOCS})"
        )
