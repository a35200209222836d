"""SASL and TLS against Apache Kafka's own listeners: `pull`, `status` and `verify` log in with
every mechanism and TLS setting the puller offers; a wrong password, an untrusted CA and a
plaintext client on a TLS port each end in one line, exit 6, `kafka_auth` or `kafka_tls`, no
traceback, and the password nowhere."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pytest

from sandbox.apache_kafka.broker import USERS, ApacheKafka
from tests.brokers import only_broker
from tests.kafka_read import records
from tests.support import TOKEN, run_cli, sandbox

pytestmark = only_broker("apache", reason="noida-db has no SASL listener and no TLS")


@dataclass(frozen=True, slots=True)
class Login:
    """How a client reaches one listener: the puller's flags and environment, librdkafka's."""

    listener: str
    flags: list[str]
    env: dict[str, str]
    librdkafka: dict[str, str]


def login(
    broker: ApacheKafka,
    listener: str,
    mechanism: str | None = None,
    *,
    password: str = USERS["puller"],
    ca: str | None = None,
    protocol: str | None = None,
) -> Login:
    tls = broker.tls
    protocol = protocol or {"MTLS": "SSL"}.get(listener, listener)
    flags = ["--bootstrap-servers", broker.address(listener)]
    flags += ["--kafka-security-protocol", protocol]
    librdkafka = {"security.protocol": protocol.lower()}
    env: dict[str, str] = {}
    if protocol.startswith("SASL"):
        flags += ["--kafka-sasl-mechanism", mechanism or "PLAIN", "--kafka-sasl-username", "puller"]
        env["OCPI_PULLER_KAFKA_SASL_PASSWORD"] = password
        librdkafka |= {
            "sasl.mechanism": mechanism or "PLAIN",
            "sasl.username": "puller",
            "sasl.password": password,
        }
    if protocol.endswith("SSL"):
        flags += ["--kafka-ca-file", ca or str(tls.ca_cert)]
        librdkafka["ssl.ca.location"] = str(tls.ca_cert)
    if listener == "MTLS":
        flags += ["--kafka-ssl-certfile", str(tls.client_cert)]
        flags += ["--kafka-ssl-keyfile", str(tls.client_key)]
        librdkafka |= {
            "ssl.certificate.location": str(tls.client_cert),
            "ssl.key.location": str(tls.client_key),
        }
    return Login(listener, flags, env, librdkafka)


LOGINS = [
    ("SASL_PLAINTEXT", "PLAIN"),
    ("SASL_PLAINTEXT", "SCRAM-SHA-256"),
    ("SASL_PLAINTEXT", "SCRAM-SHA-512"),
    ("SSL", None),
    ("SASL_SSL", "SCRAM-SHA-512"),
    ("SASL_SSL", "PLAIN"),
    ("MTLS", None),
]


@pytest.mark.parametrize(
    ("listener", "mechanism"), LOGINS, ids=[f"{x}-{y or 'cert'}" for x, y in LOGINS]
)
async def test_pull_status_and_verify_log_in(
    broker: ApacheKafka, prefix: str, listener: str, mechanism: str | None
) -> None:
    way = login(broker, listener, mechanism)
    common = ["--topic-prefix", prefix, *way.flags, "--output", "json"]
    async with sandbox(sizes={"tokens": 300}, max_limit=100) as (base, _):
        code, out, err = await run_cli(
            "pull", "--url", f"{base}/ocpi/versions", "--module", "tokens", "--partner", "sbx",
            "--pull-id", "secure", "--no-progress-bar", *common,
            env={**way.env, "OCPI_PULLER_TOKEN": TOKEN},
        )  # fmt: skip
    assert code == 0, err[-2000:]
    assert json.loads(out.splitlines()[-1])["objects_emitted"] == 300

    code, out, err = await run_cli("status", *common, env=way.env)
    assert code == 0, err[-2000:]
    assert [json.loads(line)["pull_id"] for line in out.splitlines()] == ["secure"]

    code, out, err = await run_cli("verify", "--pull-id", "secure", *common, env=way.env)
    assert code == 0, err[-2000:]
    assert "300" in out

    # The second client, logged in the same way, sees every object.
    found = await records(broker.address(listener), f"{prefix}.tokens", security=way.librdkafka)
    assert len({r.key for r in found}) == 300


def assert_one_line(code: int, out: str, err: str, kind: str, secret: str | None = None) -> str:
    assert code == 6, err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith(f"ocpi-puller: {kind}: "), lines[0]
    assert "Traceback" not in out + err
    if secret is not None:
        assert secret not in out + err
    if out.strip():
        summary = json.loads(out.splitlines()[-1])
        assert summary["error_kind"] == kind
        assert summary["exit_code"] == 6
    return lines[0]


async def test_a_wrong_password_is_one_line_and_never_shown(broker: ApacheKafka) -> None:
    wrong = "not-the-puller-secret-4711"
    way = login(broker, "SASL_SSL", "SCRAM-SHA-512", password=wrong)
    common = ["--topic-prefix", "wrong", *way.flags, "--output", "json"]
    async with sandbox(sizes={"tokens": 10}) as (base, _):
        code, out, err = await run_cli(
            "pull", "--url", f"{base}/ocpi/versions", "--module", "tokens", "--partner", "sbx",
            "--no-progress-bar", "--kafka-connect-timeout-s", "60", *common,
            env={**way.env, "OCPI_PULLER_TOKEN": TOKEN},
        )  # fmt: skip
    line = assert_one_line(code, out, err, "kafka_auth", wrong)
    assert "refused the login of user 'puller'" in line
    for command in (["status"], ["verify", "--pull-id", "x"]):
        code, out, err = await run_cli(*command, *common, env=way.env)
        assert_one_line(code, out, err, "kafka_auth", wrong)


@pytest.mark.parametrize("case", ["unknown-ca", "plaintext-on-tls"])
async def test_tls_failures_are_one_line(broker: ApacheKafka, case: str) -> None:
    if case == "unknown-ca":
        way = login(broker, "SSL", ca=str(broker.tls.other_ca_cert))
        expected = "its TLS certificate is not trusted"
    else:
        way = login(broker, "SSL", protocol="PLAINTEXT")
        expected = "speaks TLS"
    common = ["--topic-prefix", "tls", *way.flags, "--output", "json"]
    async with sandbox(sizes={"tokens": 10}) as (base, _):
        code, out, err = await run_cli(
            "pull", "--url", f"{base}/ocpi/versions", "--module", "tokens", "--partner", "sbx",
            "--no-progress-bar", "--kafka-connect-timeout-s", "60", *common,
            env={**way.env, "OCPI_PULLER_TOKEN": TOKEN},
        )  # fmt: skip
    assert expected in assert_one_line(code, out, err, "kafka_tls")
    code, out, err = await run_cli("status", *common, env=way.env)
    assert expected in assert_one_line(code, out, err, "kafka_tls")
