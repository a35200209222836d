"""What an operator reads (issue 14 item 7): a summary that never cuts a number or a name (a table
when it fits, `key: value` lines when narrower or not a terminal), warnings and errors in the
text summary, "already complete: nothing to do" for a completed pull id, and a warning when a
resumed pull is given a flag its plan pins."""

from __future__ import annotations

import asyncio
import fcntl
import os
import pty
import struct
import sys
import termios

from tests.support import TOKEN, pull, sandbox

LONG_NAME = "a-partner-with-a-rather-long-name-for-the-table"


async def run_in_terminal(columns: int, *args: str) -> tuple[int, str]:
    """`ocpi-puller` on a pseudo-terminal of `columns` columns: exit code and what it showed."""
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 40, columns, 0, 0))
    environment = {k: v for k, v in os.environ.items() if not k.startswith("OCPI_PULLER_")}
    environment.update({"OCPI_PULLER_TOKEN": TOKEN, "TERM": "xterm"})
    environment.pop("COLUMNS", None)
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "producer.cli", *args,
        stdin=follower, stdout=follower, stderr=follower, env=environment,
    )  # fmt: skip
    os.close(follower)
    chunks: list[bytes] = []
    loop = asyncio.get_running_loop()
    while True:
        try:
            chunk = await loop.run_in_executor(None, os.read, leader, 65536)
        except OSError:  # the terminal closed with the process
            break
        if not chunk:
            break
        chunks.append(chunk)
    await process.wait()
    os.close(leader)
    return process.returncode or 0, b"".join(chunks).decode(errors="replace")


def pull_args(base: str, bootstrap: str, prefix: str, *extra: str) -> tuple[str, ...]:
    return ("pull", "--url", f"{base}/ocpi/versions", "--module", "tokens",
            "--bootstrap-servers", bootstrap, "--topic-prefix", prefix,
            "--partner", LONG_NAME, *extra)  # fmt: skip


async def test_at_80_columns_the_summary_cuts_nothing(bootstrap: str, prefix: str) -> None:
    async with sandbox(sizes={"tokens": 12_345}, max_limit=1000) as (base, _):
        code, shown = await run_in_terminal(
            80, *pull_args(base, bootstrap, prefix, "--no-progress-bar")
        )
    assert code == 0, shown
    assert "…" not in shown
    assert "12,345" in shown
    assert "a-partner-with-a-rather-long-name-for-the-table" in shown
    assert "partner: a-partner-with-a-rather-long-name-for-the-table" in shown  # key: value


async def test_on_a_wide_terminal_the_summary_is_a_table(bootstrap: str, prefix: str) -> None:
    async with sandbox(sizes={"tokens": 2_000}, max_limit=1000) as (base, _):
        code, shown = await run_in_terminal(
            200, *pull_args(base, bootstrap, prefix, "--no-progress-bar")
        )
    assert code == 0, shown
    assert "┃" in shown or "│" in shown  # drawn as a table
    assert "partner: " not in shown


async def test_in_a_pipe_the_summary_is_key_value_lines(bootstrap: str, prefix: str) -> None:
    async with sandbox(sizes={"tokens": 2_000}, max_limit=1000) as (base, _):
        environment = {k: v for k, v in os.environ.items() if not k.startswith("OCPI_PULLER_")}
        environment["OCPI_PULLER_TOKEN"] = TOKEN
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "producer.cli", *pull_args(base, bootstrap, prefix),
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=environment,
        )  # fmt: skip
        out, _ = await process.communicate()
    text = out.decode()
    assert process.returncode == 0
    assert "objects: 2,000" in text
    assert "complete: yes" in text


async def test_the_text_summary_says_a_completed_pull_id_has_nothing_to_do(
    bootstrap: str, prefix: str
) -> None:
    async with sandbox(sizes={"tokens": 500}, max_limit=1000) as (base, _):
        first = await pull(base, bootstrap, prefix, pull_id="nightly-1", partner=LONG_NAME)
        assert first.exit_code == 0
        code, shown = await run_in_terminal(
            120, *pull_args(base, bootstrap, prefix, "--pull-id", "nightly-1", "--no-progress-bar")
        )
    assert code == 0
    assert "already complete: nothing to do" in shown


async def test_resuming_with_a_flag_the_plan_pins_warns_with_the_pinned_value(
    bootstrap: str, prefix: str
) -> None:
    async with sandbox(sizes={"tokens": 3000}, max_limit=100, latency_ms=30) as (base, state):
        pulling = asyncio.create_task(
            pull(base, bootstrap, prefix, pull_id="pinned-1", date_to="2099-01-01T00:00:00Z")
        )
        while state.stats.pages_served < 5:
            await asyncio.sleep(0.02)
        pulling.cancel()  # an abandoned run: its checkpoints stay
        await asyncio.gather(pulling, return_exceptions=True)
        resumed = await pull(base, bootstrap, prefix, pull_id="pinned-1", window_size=500)
    summary = resumed.summaries[0]
    assert resumed.exit_code == 0, summary
    assert summary.resumed
    assert any(
        w.startswith("resumed: --window-size ignored; the plan of this pull pins 20000")
        for w in summary.warnings
    ), summary.warnings
