"""`make test`: the suite's two halves at once, each in its own pytest process.

* `noida`: every test that needs no broker, and every Kafka-facing test on the embedded noida-db;
* `apache`: every Kafka-facing test again on Apache Kafka 4.x (`KAFKA_VERSIONS=3.9` or `all`
  adds 3.9), on a broker this run starts from its Maven jars.

Most of the Kafka-facing tests wait on sockets, sleeps and timeouts rather than compute, so the
two halves share the machine's two cores well: together they take about as long as the longer
one. Each line is prefixed with its half; the last line adds both up. Without Java or Maven the
apache half is skipped, and one line says so (CI refuses to run without them: `.ci/run`).
With `KAFKA_BOOTSTRAP_SERVERS` (an external Kafka), one plain pytest run.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
from collections import Counter

from sandbox.apache_kafka.classpath import resolve
from tests.brokers import apache_lines, apache_skipped_because

COUNT = re.compile(r"(\d+) (passed|failed|skipped|errors?|xfailed|xpassed|deselected)")


def pytest(*args: str) -> list[str]:
    return [sys.executable, "-m", "pytest", *args]


def run_half(name: str, command: list[str], counts: Counter[str], codes: dict[str, int]) -> None:
    """Run one half, echoing its output line by line with its name, and keep its tally."""
    process = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        bufsize=1,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},  # lines as they come, not in blocks
    )
    assert process.stdout is not None
    last = ""
    for line in process.stdout:
        print(f"[{name}] {line}", end="", flush=True)
        if line.strip():
            last = line
    codes[name] = process.wait()
    for number, what in COUNT.findall(last):
        counts["error" if what.startswith("error") else what] += int(number)


def main(extra: list[str]) -> int:
    if os.environ.get("KAFKA_BOOTSTRAP_SERVERS"):
        return subprocess.call(pytest("-q", *extra))
    why = apache_skipped_because()
    halves = {"noida": pytest("-q", "--brokers", "noida", *extra)}
    if why is not None:
        print(f"Apache Kafka half skipped: {why}", flush=True)
    elif apache_lines():
        for line in apache_lines():  # resolved once, before the two halves start
            resolve(line)
        halves["apache"] = pytest("-q", "--brokers", "apache", "-p", "no:cacheprovider", *extra)
    counts: Counter[str] = Counter()
    codes: dict[str, int] = {}
    threads = [
        threading.Thread(target=run_half, args=(name, command, counts, codes))
        for name, command in halves.items()
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    tally = f"{counts['passed']} passed, {counts['failed']} failed"
    if counts["skipped"]:
        tally += f", {counts['skipped']} skipped"
    if counts["error"]:
        tally += f", {counts['error']} errors"
    print(f"halves: {', '.join(f'{n} exit {c}' for n, c in codes.items())}")
    print(f"total: {tally}")
    return max(codes.values(), default=1)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
