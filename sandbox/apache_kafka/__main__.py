"""`make kafka`: start an Apache Kafka broker by hand, print its listeners, stop it on Ctrl-C.

`python -m sandbox.apache_kafka [--version 4.4|3.9] [--data-dir DIR]`. Without --data-dir the
broker lives in a temporary folder removed when it stops.
"""

from __future__ import annotations

import argparse
import shutil
import signal
import sys
import tempfile
import threading
from pathlib import Path
from types import FrameType

from sandbox.apache_kafka.broker import MECHANISMS, USERS, ApacheKafka, start_apache_kafka
from sandbox.apache_kafka.classpath import ToolsMissing, versions


def describe(broker: ApacheKafka) -> str:
    """What a developer needs to connect: one line per listener, then the credentials."""
    tls = broker.tls
    notes = {
        "PLAINTEXT": "no authentication (User:ANONYMOUS, a super user)",
        "SASL_PLAINTEXT": f"SASL {', '.join(MECHANISMS)}",
        "SSL": f"TLS; CA {tls.ca_cert}",
        "SASL_SSL": f"SASL {', '.join(MECHANISMS)} over TLS; CA {tls.ca_cert}",
        "MTLS": f"TLS with a client certificate: {tls.client_cert}, key {tls.client_key}",
    }
    lines = [f"Apache Kafka {broker.version} (KRaft, one node) in {broker.data_dir}"]
    lines += [
        f"  {name:<15} {broker.address(name):<21} {notes[name]}" for name in broker.ports.listeners
    ]
    users = ", ".join(f"{name}/{password}" for name, password in USERS.items())
    lines.append(f"  users (name/password): {users}; `limited` has no ACLs of its own")
    lines.append(f"  log: {broker.log_file}")
    lines.append(
        "  e.g. ocpi-puller pull ... --kafka-bootstrap-servers "
        f"{broker.address('SASL_SSL')} --kafka-security-protocol SASL_SSL "
        "--kafka-sasl-mechanism SCRAM-SHA-512 --kafka-sasl-username puller "
        f"--kafka-sasl-password puller-secret --kafka-ca-file {tls.ca_cert}"
    )
    lines.append("Ctrl-C stops it.")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sandbox.apache_kafka", description=__doc__)
    parser.add_argument("--version", default="4.4", choices=sorted(versions()))
    parser.add_argument("--data-dir", type=Path, default=None)
    args = parser.parse_args(argv)
    data_dir = args.data_dir or Path(tempfile.mkdtemp(prefix="apache-kafka-"))
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, on_signal)
    try:
        broker = start_apache_kafka(data_dir, args.version)
    except ToolsMissing as error:
        print(f"cannot start Apache Kafka: {error}", file=sys.stderr)
        return 1
    try:
        print(describe(broker), flush=True)
        while not stop.wait(1.0):
            if broker.process.poll() is not None:
                print(f"the broker exited ({broker.process.returncode}); see {broker.log_file}")
                return 1
    finally:
        broker.stop()
        if args.data_dir is None:
            shutil.rmtree(data_dir, ignore_errors=True)
    print("stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
