"""`ocpi-puller reset` over real sockets: after it, the same --pull-id pulls afresh instead of
saying "already complete"; on a terminal it writes nothing without --yes; --partner/--module
narrow it to some partner modules of the pull."""

from __future__ import annotations

import asyncio
import json
import os
import pty
import sys
import time
from datetime import datetime

from producer.kafka.checkpoints import find_pull
from producer.kafka.connection import KafkaConnection
from tests.support import pull, run_cli, sandbox


def on_a_terminal(*args: str) -> tuple[int, str]:
    """`ocpi-puller ARGS` with stdin, stdout and stderr on a pseudo-terminal."""
    pid, fd = pty.fork()
    if pid == 0:
        os.execv(sys.executable, [sys.executable, "-m", "producer.cli", *args])
    screen = b""
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
    return os.waitstatus_to_exitcode(status), screen.decode()


async def test_after_a_reset_the_same_pull_id_pulls_afresh(bootstrap: str, prefix: str) -> None:
    kafka = ["--bootstrap-servers", bootstrap, "--topic-prefix", prefix]
    async with sandbox(sizes={"tokens": 1000}) as (base, _):
        first = await pull(base, bootstrap, prefix, pull_id="daily")
        repeated = await pull(base, bootstrap, prefix, pull_id="daily")
        code, out, err = await run_cli("reset", "--pull-id", "daily", *kafka)  # not a terminal
        resume = await pull(base, bootstrap, prefix, pull_id="daily", resume=True)
        # date_to is pinned to the second: a new snapshot shows as a later second.
        pinned = datetime.fromisoformat(first.summaries[0].date_to or "").timestamp()
        await asyncio.sleep(max(0.0, pinned + 1.05 - time.time()))
        afresh = await pull(base, bootstrap, prefix, pull_id="daily")
        verified = await run_cli("verify", "--pull-id", "daily", *kafka, "--output", "json")
        again = await run_cli("reset", "--pull-id", "daily", *kafka, "--output", "json")
        twice = await run_cli("reset", "--pull-id", "daily", *kafka, "--output", "json")
    assert first.summaries[0].objects_emitted == 1000
    assert repeated.summaries[0].objects_emitted == 0  # a completed id is a no-op ...
    assert "pull was already complete; nothing to do" in repeated.summaries[0].warnings
    assert code == 0, err
    assert out.splitlines() == [
        "reset pull daily: sbx/tokens (1 window records cleared; the plan was complete)",
        "the next pull with --pull-id daily plans afresh; objects already in Kafka stay",
    ]
    # ... until it is reset: nothing to resume, and a new pull of everything.
    assert resume.exit_code == 2
    assert resume.summaries[0].error == "nothing to resume: no checkpoint for pull daily"
    summary = afresh.summaries[0]
    assert (afresh.exit_code, summary.objects_emitted, summary.resumed) == (0, 1000, False)
    assert summary.date_to != first.summaries[0].date_to  # a new snapshot, pinned anew
    # verify counts the latest run only: the first run's 1,000 messages are not its own
    code, out, err = verified
    assert code == 0, err
    (checked,) = json.loads(out)["pulls"]
    assert (checked["messages"], checked["duplicates"]) == (1000, 0), checked
    code, out, _ = again
    assert code == 0
    (done,) = json.loads(out)["reset"]
    assert (done["partner"], done["module"], done["plan_completed"]) == ("sbx", "tokens", True)
    assert done["plan_date_to"] == summary.date_to
    code, out, _ = twice
    report = json.loads(out)
    assert (code, report["reset"], len(report["already_reset"])) == (0, [], 1)


async def test_on_a_terminal_reset_writes_nothing_without_yes(bootstrap: str, prefix: str) -> None:
    kafka = ["--bootstrap-servers", bootstrap, "--topic-prefix", prefix]
    async with sandbox(sizes={"tokens": 100}) as (base, _):
        await pull(base, bootstrap, prefix, pull_id="manual")
    connection = KafkaConnection(bootstrap)
    topic = f"{prefix}.checkpoints"
    code, screen = on_a_terminal("reset", "--pull-id", "manual", *kafka)
    assert code == 2
    assert "reset would discard the checkpoints of pull manual: sbx/tokens (plan of 1 windows" in (
        " ".join(screen.split())
    )
    assert "add --yes" in screen
    (kept,) = await find_pull(connection, topic, "manual")
    assert kept.state.plan is not None

    code, screen = on_a_terminal("reset", "--pull-id", "manual", *kafka, "--yes")
    assert code == 0, screen
    (gone,) = await find_pull(connection, topic, "manual")
    assert (gone.state.plan, gone.state.windows) == (None, {})
    assert gone.state.reset is not None


async def test_reset_narrowed_to_one_module_of_a_pull(bootstrap: str, prefix: str) -> None:
    kafka = ["--bootstrap-servers", bootstrap, "--topic-prefix", prefix]
    async with sandbox(sizes={"tokens": 50, "tariffs": 20}) as (base, _):
        await pull(base, bootstrap, prefix, pull_id="both", module="tokens")
        await pull(base, bootstrap, prefix, pull_id="both", module="tariffs")
    code, out, err = await run_cli(
        "reset", "--pull-id", "both", "--module", "tariffs", *kafka, "--output", "json"
    )
    assert code == 0, err
    assert [(r["partner"], r["module"]) for r in json.loads(out)["reset"]] == [("sbx", "tariffs")]
    stored = await find_pull(KafkaConnection(bootstrap), f"{prefix}.checkpoints", "both")
    assert {s.module: s.state.plan is not None for s in stored} == {
        "tariffs": False,
        "tokens": True,
    }
    unknown = await run_cli("reset", "--pull-id", "nope", *kafka)
    assert unknown[0] == 2
    assert unknown[2].splitlines() == [
        f"ocpi-puller: config: no pull nope on {prefix}.checkpoints: check --pull-id and "
        "--topic-prefix"
    ]
