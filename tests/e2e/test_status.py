"""`ocpi-puller status` against a real broker: a running pull's progress, then its end state."""

from __future__ import annotations

import asyncio
import json
import os
import pty
import signal
import sys
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp import web

from producer.kafka.output import KafkaOutput
from producer.kafka.records import OutMessage, TopicSpec
from producer.observe.status import ProgressFollower, PullStatus
from schemas.events import PullFailed, PullStarted, Warning_
from tests.brokers import only_broker
from tests.scripted_partner import relay
from tests.support import TOKEN, pull, run_cli, sandbox


async def statuses(bootstrap: str, prefix: str) -> list[PullStatus]:
    async with ProgressFollower(
        bootstrap, f"{prefix}.progress", datetime.now(UTC) - timedelta(hours=1)
    ) as follower:
        await follower.catch_up()
        return list(follower.statuses.values())


async def test_status_shows_a_running_pull_and_its_end(bootstrap: str, prefix: str) -> None:
    async with sandbox(sizes={"tokens": 20_000}, max_limit=200, latency_ms=40) as (base, _):
        puller = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "producer.cli", "pull",
            "--url", f"{base}/ocpi/versions", "--module", "tokens",
            "--bootstrap-servers", bootstrap, "--topic-prefix", prefix,
            "--partner", "sbx", "--pull-id", "watched-1", "--concurrency", "2", "--fanout", "1",
            "--output", "json",
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            env={**os.environ, "OCPI_PULLER_TOKEN": TOKEN},
        )  # fmt: skip
        running: list[PullStatus] = []
        for _ in range(200):
            await asyncio.sleep(0.1)
            running = await statuses(bootstrap, prefix)
            if running and running[0].objects_emitted > 0:
                break
        assert running, "no progress seen while the pull ran"
        assert running[0].state == "running"
        assert 0 < running[0].objects_emitted < 20_000
        assert running[0].total_reported == 20_000
        assert running[0].rate_per_s
        assert running[0].rate_per_s > 0
        await puller.communicate()
        assert puller.returncode == 0
    (done,) = await statuses(bootstrap, prefix)
    assert done.pull_id == "watched-1"
    assert (done.state, done.objects_emitted, done.partner, done.module) == (
        "complete",
        20_000,
        "sbx",
        "tokens",
    )
    assert done.windows_done == done.windows_total

    command = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "producer.cli", "status",
        "--bootstrap-servers", bootstrap, "--topic-prefix", prefix, "--output", "json",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await command.communicate()
    assert command.returncode == 0, err.decode()
    (line,) = out.decode().splitlines()  # one object per pull and shard, one a line
    pull = json.loads(line)
    assert pull["state"] == "complete"
    assert pull["objects_emitted"] == 20_000
    assert pull["age_s"] >= 0


async def test_status_without_kafka_is_one_clear_line() -> None:
    command = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "producer.cli", "status", "--bootstrap-servers", "127.0.0.1:1",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    _, err = await command.communicate()
    assert command.returncode == 6
    lines = err.decode().strip().splitlines()
    assert len(lines) == 1
    assert "cannot read progress from Kafka" in lines[0]


# -- issue 14: interrupted and stale pulls, pull's Kafka settings, --follow, one Ctrl-C ---------


def base(pull_id: str, at: datetime) -> dict[str, object]:
    return {"pull_id": pull_id, "partner": "sbx", "module": "tokens", "at": at}


def started(pull_id: str, at: datetime) -> bytes:
    event = PullStarted(
        **base(pull_id, at),  # type: ignore[arg-type]
        url="https://partner.example/ocpi/2.2.1/tokens",
        kind="full",
        date_from=None,
        date_to=at,
        windows_total=1,
        windows_this_shard=1,
        total_reported=1000,
        resumed=False,
    )
    return event.model_dump_json().encode()


def heartbeat(pull_id: str, at: datetime, every_s: float) -> bytes:
    # The heartbeat event as the puller writes it (schemas/events.py may not know it yet: status
    # must read it either way, as a sign of life).
    event = {"event": "heartbeat", **base(pull_id, at), "shard_index": 0, "shard_count": 1}
    return json.dumps({**event, "at": at.isoformat(), "heartbeat_s": every_s}).encode()


def interrupted(pull_id: str, at: datetime) -> bytes:
    event = PullFailed(
        **base(pull_id, at),  # type: ignore[arg-type]
        reason="interrupted",
        message="stopped by a signal",
        objects_emitted=10,
        duration_s=3.0,
        resumable=True,
    )
    return event.model_dump_json().encode()


async def produce_events(bootstrap: str, prefix: str, events: list[tuple[str, bytes]]) -> None:
    kafka = KafkaOutput(bootstrap, partitions=2)
    await kafka.start()
    try:
        await kafka.ensure_topics([TopicSpec(f"{prefix}.progress", compacted=False)])
        messages = [OutMessage(key.encode(), value, []) for key, value in events]
        await kafka.send_and_wait(f"{prefix}.progress", messages)
    finally:
        await kafka.stop()


async def test_status_shows_interrupted_and_stale_pulls_with_pulls_environment(
    bootstrap: str, prefix: str
) -> None:
    now = datetime.now(UTC)
    ago = lambda seconds: now - timedelta(seconds=seconds)  # noqa: E731
    await produce_events(
        bootstrap,
        prefix,
        [
            ("stopped", started("stopped", ago(60))),
            ("stopped", interrupted("stopped", ago(50))),
            # No event for 200 s, no heartbeat ever: three default heartbeats (90 s) passed.
            ("silent", started("silent", ago(200))),
            # Heard from 10 s ago (a heartbeat, every 30 s): alive.
            ("beating", started("beating", ago(200))),
            ("beating", heartbeat("beating", ago(10), 30)),
            # Heartbeats every 60 s, the last 150 s ago: not yet three missed.
            ("slow", started("slow", ago(400))),
            ("slow", heartbeat("slow", ago(150), 60)),
            # Heartbeats every 10 s, the last 40 s ago: three missed.
            ("fast", started("fast", ago(400))),
            ("fast", heartbeat("fast", ago(40), 10)),
        ],
    )
    # Kafka and prefix from the environment alone, as `pull` reads them.
    env = {"OCPI_PULLER_BOOTSTRAP_SERVERS": bootstrap, "OCPI_PULLER_TOPIC_PREFIX": prefix}
    code, out, err = await run_cli("status", "--output", "json", env=env)
    assert (code, err) == (0, "")
    pulls = [json.loads(line) for line in out.splitlines()]
    states = {p["pull_id"]: p["state"] for p in pulls}
    assert states == {
        "stopped": "interrupted",
        "silent": "stale",
        "beating": "running",
        "slow": "running",
        "fast": "stale",
    }
    by_id = {p["pull_id"]: p for p in pulls}
    assert by_id["beating"]["last_event"] == "heartbeat"
    assert by_id["fast"]["heartbeat_s"] == 10
    assert by_id["stopped"]["last_problem"] == "interrupted: stopped by a signal"

    code, out, err = await run_cli("status", env={**env, "COLUMNS": "80"})
    assert code == 0
    assert "interrupted" in out
    assert "stale" in out


@only_broker(
    "noida",
    reason="noida-db takes any SASL/PLAIN login on its one plaintext listener and refuses SCRAM; "
    "on Apache Kafka, status over SASL and TLS is tests/apache_kafka/test_security.py's",
)
async def test_status_logs_in_to_kafka_as_pull_does(bootstrap: str, prefix: str) -> None:
    now = datetime.now(UTC)
    await produce_events(bootstrap, prefix, [("p", started("p", now))])
    password = "s3cret-kafka-pw"
    sasl = ["--kafka-security-protocol", "SASL_PLAINTEXT", "--kafka-sasl-username", "ops"]
    env = {"OCPI_PULLER_KAFKA_SASL_PASSWORD": password}
    common = ["status", "--bootstrap-servers", bootstrap, "--topic-prefix", prefix]
    # SASL/PLAIN, which the embedded broker accepts: the pull is there.
    code, out, err = await run_cli(*common, *sasl, "--output", "json", env=env)
    assert code == 0, err
    assert [json.loads(line)["pull_id"] for line in out.splitlines()] == ["p"]
    # SCRAM, which it does not: the mechanism given reached the client, and the refusal is
    # told at once. One line, no password.
    scram = [*sasl, "--kafka-sasl-mechanism", "SCRAM-SHA-256"]
    code, out, err = await run_cli(*common, *scram, env=env)
    assert code == 6
    (line,) = err.splitlines()
    assert line.startswith("ocpi-puller: kafka_auth: ")
    assert "does not accept SASL mechanism SCRAM-SHA-256" in line
    assert password not in out + err
    # At debug level aiokafka logs each request, a PLAIN login's bytes with the password in
    # them: every log line passes the secrets filter. (`verify` of a pull that is not there:
    # it logs in, reads, and says so.)
    verify = [
        "verify",
        "--pull-id",
        "p",
        "--bootstrap-servers",
        bootstrap,
        "--topic-prefix",
        prefix,
    ]
    code, out, err = await run_cli(*verify, *sasl, "--log-level", "debug", env=env)
    assert "SaslAuthenticate" in err  # the line is there, the password is not
    assert password not in out + err


async def test_status_follow_sees_a_topic_created_later_and_one_sigint_ends_it(
    bootstrap: str, prefix: str
) -> None:
    follower = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "producer.cli", "status", "--follow", "--output", "json",
        "--bootstrap-servers", bootstrap, "--topic-prefix", prefix,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert follower.stdout is not None
    # No progress topic yet (no pull has ever run): nothing to print until a pull appears.
    await produce_events(bootstrap, prefix, [("late", started("late", datetime.now(UTC)))])
    line = json.loads(await follower.stdout.readline())
    assert line["pull_id"] == "late"
    follower.send_signal(signal.SIGINT)
    out, err = await follower.communicate()
    assert follower.returncode == 130
    assert err.decode().splitlines() == ["ocpi-puller: interrupted: stopped by a signal"]
    last = json.loads(out.decode().splitlines()[-1])
    assert (last["command"], last["exit_code"], last["error_kind"]) == (
        "status",
        130,
        "interrupted",
    )


def test_status_follow_on_a_terminal_ends_on_the_first_ctrl_c(bootstrap: str, prefix: str) -> None:
    asyncio.run(produce_events(bootstrap, prefix, [("p", started("p", datetime.now(UTC)))]))
    pid, fd = pty.fork()
    if pid == 0:  # the child: status --follow on the terminal, as an operator runs it
        os.execve(
            sys.executable,
            [
                sys.executable, "-m", "producer.cli", "status", "--follow",
                "--bootstrap-servers", bootstrap, "--topic-prefix", prefix,
            ],
            {**os.environ, "COLUMNS": "80", "LINES": "50"},
        )  # fmt: skip
    screen = b""
    while b"running" not in screen:  # the live table shows the pull
        screen += os.read(fd, 65536)  # an OSError here: the child ended before showing it
    os.write(fd, b"\x03")  # one Ctrl-C
    while True:
        try:
            chunk = os.read(fd, 65536)
        except OSError:  # the child is gone
            break
        if not chunk:
            break
        screen += chunk
    _, status = os.waitpid(pid, 0)
    os.close(fd)
    assert os.waitstatus_to_exitcode(status) == 130
    assert b"ocpi-puller: interrupted" in screen


# -- issue 25: a status that reads --------------------------------------------------------------

LONG_PROBLEM = (
    "window 3: 99,980 distinct objects for a reported total of 100,000; reading the window "
    "again because the partner's counts and its pages disagree"
)


def warned(pull_id: str, at: datetime, message: str) -> bytes:
    event = Warning_(
        **base(pull_id, at),  # type: ignore[arg-type]
        code="window_short",
        message=message,
    )
    return event.model_dump_json().encode()


async def test_status_is_one_row_per_pull_at_any_width(bootstrap: str, prefix: str) -> None:
    now = datetime.now(UTC)
    long_id = "20261204T185706Z-f4e207"
    await produce_events(
        bootstrap,
        prefix,
        [
            (long_id, started(long_id, now - timedelta(seconds=20))),
            (long_id, warned(long_id, now - timedelta(seconds=10), LONG_PROBLEM)),
            ("stopped", started("stopped", now - timedelta(seconds=60))),
            ("stopped", interrupted("stopped", now - timedelta(seconds=50))),
        ],
    )
    env = {"OCPI_PULLER_BOOTSTRAP_SERVERS": bootstrap, "OCPI_PULLER_TOPIC_PREFIX": prefix}
    for columns in (80, 120, 200):
        code, out, _ = await run_cli("status", env={**env, "COLUMNS": str(columns)})
        assert code == 0
        title, header, first, second, *notes = out.splitlines()
        assert title.startswith("ocpi-puller pulls (")
        assert header.startswith("pull")
        assert all(len(line) <= columns for line in (header, first, second))
        assert "running" in first
        assert "interrupted" in second
        assert "1,000" in first  # numbers whole
        # What the row could not hold is under the table, whole.
        assert f"window_short: {LONG_PROBLEM}" not in first
        assert f"{long_id} sbx/tokens: window_short: {LONG_PROBLEM}" in notes
    code, out, _ = await run_cli("status", "--wide", env={**env, "COLUMNS": "80"})
    _, _, first, _ = out.splitlines()  # no notes: every text whole in its row
    assert long_id in first
    assert first.endswith(f"window_short: {LONG_PROBLEM}")


async def test_status_for_scripts_is_one_line_per_pull_and_shard(
    bootstrap: str, prefix: str
) -> None:
    now = datetime.now(UTC)
    shards = [
        PullStarted(
            **base("sharded", now),  # type: ignore[arg-type]
            shard_index=i, shard_count=2, url="https://partner.example/ocpi/2.2.1/tokens",
            kind="full", date_from=None, date_to=now, windows_total=4, windows_this_shard=2,
            total_reported=1000, resumed=False,
        ).model_dump_json().encode()
        for i in range(2)
    ]  # fmt: skip
    await produce_events(bootstrap, prefix, [("sharded", shard) for shard in shards])
    common = ("status", "--bootstrap-servers", bootstrap, "--topic-prefix", prefix)
    code, out, _ = await run_cli(*common, "--output", "json")
    assert code == 0
    assert sorted(json.loads(line)["shard"] for line in out.splitlines()) == ["1/2", "2/2"]
    code, out, _ = await run_cli(*common, "--output", "tsv")
    header, *rows = out.splitlines()
    assert header.split("\t")[:5] == ["pull_id", "partner", "module", "shard", "state"]
    assert [row.split("\t")[3] for row in rows] == ["1/2", "2/2"]
    code, out, _ = await run_cli(*common, "--since", "1s", env={"COLUMNS": "80"})
    assert code == 0
    assert out.startswith("no pulls since ")


async def test_status_follow_in_a_pipe_appends_one_line_per_change(
    bootstrap: str, prefix: str
) -> None:
    await produce_events(bootstrap, prefix, [("quiet", started("quiet", datetime.now(UTC)))])
    follower = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "producer.cli", "status", "--follow",
        "--bootstrap-servers", bootstrap, "--topic-prefix", prefix,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "COLUMNS": "80"},
    )  # fmt: skip
    assert follower.stdout is not None
    table = [(await follower.stdout.readline()).decode() for _ in range(3)]
    assert table[0].startswith("ocpi-puller pulls (")
    assert "quiet" in table[2]
    at = datetime.now(UTC)
    await produce_events(bootstrap, prefix, [("quiet", warned("quiet", at, LONG_PROBLEM))])
    line = (await follower.stdout.readline()).decode().rstrip("\n")
    assert " pull=quiet partner=sbx module=tokens shard=1/1 state=running " in line
    assert line.endswith(f'problem="window_short: {LONG_PROBLEM}"')  # whole, on one line
    follower.send_signal(signal.SIGINT)
    out, _ = await follower.communicate()
    assert follower.returncode == 130
    assert b"\x1b[" not in out  # appended lines, never a redraw
    assert out.decode().count("pull=quiet") <= 1  # nothing changed since: no more lines


async def test_status_counts_planning_retries_as_the_summary_does(
    bootstrap: str, prefix: str
) -> None:
    refused = [0]

    def flaky_planning(
        request: Any, status: int, headers: dict[str, str], body: bytes
    ) -> web.StreamResponse:
        if request.query.get("limit") == "1" and refused[0] < 2:  # the first two count probes
            refused[0] += 1
            return web.Response(status=503, text="busy")
        return web.Response(status=status, body=body, headers=headers,
                            content_type="application/json")  # fmt: skip

    async with (
        sandbox(sizes={"tokens": 500}, max_limit=100) as (upstream, _),
        relay(upstream, flaky_planning) as base,
    ):
        # The module endpoint itself: discovery would lead to the sandbox past the relay.
        url = f"{base}/ocpi/emsp/2.2.1/tokens"
        result = await pull(base, bootstrap, prefix, pull_id="planned", url=url)
    summary = result.summaries[0]
    assert result.exit_code == 0, summary
    assert summary.retries == 2
    _, out, _ = await run_cli(
        "status", "--bootstrap-servers", bootstrap, "--topic-prefix", prefix, "--output", "json"
    )
    assert json.loads(out)["retries"] == summary.retries
