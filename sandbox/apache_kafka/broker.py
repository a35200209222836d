"""A single-node Apache Kafka (KRaft, combined broker and controller) for tests, `make kafka` and
chaos runs, from the jars `classpath.resolve` gathers.

Listeners, each on a free loopback port:

| name | protocol | who |
|---|---|---|
| PLAINTEXT | PLAINTEXT | `User:ANONYMOUS` (a super user: the tests' default) |
| SASL_PLAINTEXT | SASL_PLAINTEXT | PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 users |
| SSL | SSL | server certificate only; `User:ANONYMOUS` |
| SASL_SSL | SASL_SSL | the SASL users, over TLS |
| MTLS | SSL with `ssl.client.auth=required` | `User:<client certificate CN>` |

ACLs are enforced (`StandardAuthorizer`, nothing allowed without an ACL) for every principal but
the super users: ANONYMOUS, `admin`, `puller` and the client certificate's CN. `limited` is the
user with no rights of its own, for least-privilege tests.

The broker is started as `java … kafka.Kafka server.properties` in the caller's process group,
and is ready when its log says the server started and every listener answers ApiVersions.
"""

from __future__ import annotations

import base64
import signal
import subprocess
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from sandbox.apache_kafka.classpath import resolve, versions
from sandbox.apache_kafka.tls import CLIENT_COMMON_NAME, TlsFiles, make_tls_files
from sandbox.broker import answers_api_versions, free_port

LISTENERS = ("PLAINTEXT", "SASL_PLAINTEXT", "SSL", "SASL_SSL", "MTLS")
PROTOCOLS = {
    "CONTROLLER": "PLAINTEXT",
    "PLAINTEXT": "PLAINTEXT",
    "SASL_PLAINTEXT": "SASL_PLAINTEXT",
    "SSL": "SSL",
    "SASL_SSL": "SASL_SSL",
    "MTLS": "SSL",
}
MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")
# name → password; every user can log in with every mechanism.
USERS = {"admin": "admin-secret", "puller": "puller-secret", "limited": "limited-secret"}
SUPER_USERS = ("ANONYMOUS", "admin", "puller", CLIENT_COMMON_NAME)
STARTED_LINE = "Kafka Server started"
JVM_OPTIONS = (
    "-Xms256m",
    "-Xmx768m",
    "-XX:+UseG1GC",
    "-XX:MaxGCPauseMillis=20",
    "-Djava.awt.headless=true",
    "-Dorg.slf4j.simpleLogger.defaultLogLevel=info",
    "-Dorg.slf4j.simpleLogger.showDateTime=true",
    "-Dorg.slf4j.simpleLogger.log.org.apache.kafka.clients=warn",
    "-Dorg.slf4j.simpleLogger.log.kafka.server.metadata=warn",
)


@dataclass(frozen=True, slots=True)
class Ports:
    """The broker's ports: its controller's and one per listener."""

    controller: int
    listeners: dict[str, int]

    @classmethod
    def free(cls) -> Ports:
        return cls(free_port(), {name: free_port() for name in LISTENERS})


def _jaas_plain(users: dict[str, str]) -> str:
    entries = " ".join(f'user_{name}="{password}"' for name, password in users.items())
    return f"org.apache.kafka.common.security.plain.PlainLoginModule required {entries};"


def server_properties(
    data_dir: Path, ports: Ports, tls: TlsFiles, extra: dict[str, str] | None = None
) -> dict[str, str]:
    """The broker's configuration."""
    listeners = {"CONTROLLER": ports.controller, **ports.listeners}
    properties = {
        "process.roles": "broker,controller",
        "node.id": "1",
        "controller.quorum.voters": f"1@127.0.0.1:{ports.controller}",
        "controller.listener.names": "CONTROLLER",
        "listeners": ",".join(f"{name}://127.0.0.1:{port}" for name, port in listeners.items()),
        "advertised.listeners": ",".join(
            f"{name}://127.0.0.1:{port}" for name, port in ports.listeners.items()
        ),
        "listener.security.protocol.map": ",".join(f"{k}:{v}" for k, v in PROTOCOLS.items()),
        "inter.broker.listener.name": "PLAINTEXT",
        "log.dirs": str(data_dir / "logs"),
        "num.partitions": "1",
        "auto.create.topics.enable": "false",
        "offsets.topic.replication.factor": "1",
        "offsets.topic.num.partitions": "5",
        "transaction.state.log.replication.factor": "1",
        "transaction.state.log.min.isr": "1",
        "transaction.state.log.num.partitions": "5",
        "group.initial.rebalance.delay.ms": "0",
        # A broker killed and restarted registers again only once its old session expired.
        "broker.session.timeout.ms": "2000",
        "broker.heartbeat.interval.ms": "500",
        # The log cleaner looks for work every second (compaction tests), not every 15 s.
        "log.cleaner.backoff.ms": "1000",
        "log.retention.check.interval.ms": "5000",
        "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
        "super.users": ";".join(f"User:{user}" for user in SUPER_USERS),
        "allow.everyone.if.no.acl.found": "false",
        "sasl.enabled.mechanisms": ",".join(MECHANISMS),
        "ssl.keystore.type": "PEM",
        "ssl.keystore.location": str(tls.broker_cert.with_name("broker-keystore.pem")),
        "ssl.truststore.type": "PEM",
        "ssl.truststore.location": str(tls.ca_cert),
        "listener.name.mtls.ssl.client.auth": "required",
        # A client certificate's principal is its CN (User:ocpi-puller), as ACLs usually name it.
        "ssl.principal.mapping.rules": "RULE:^CN=([^,]+).*$/$1/,DEFAULT",
    }
    for listener in ("sasl_plaintext", "sasl_ssl"):
        properties[f"listener.name.{listener}.plain.sasl.jaas.config"] = _jaas_plain(USERS)
        for mechanism in ("scram-sha-256", "scram-sha-512"):
            properties[f"listener.name.{listener}.{mechanism}.sasl.jaas.config"] = (
                "org.apache.kafka.common.security.scram.ScramLoginModule required;"
            )
    properties.update(extra or {})
    return properties


def _write_properties(path: Path, properties: dict[str, str]) -> None:
    def escape(value: str) -> str:
        return value.replace("\\", "\\\\").replace("\n", "\\n")

    path.write_text("".join(f"{key}={escape(value)}\n" for key, value in properties.items()))


@dataclass(slots=True)
class ApacheKafka:
    """A running Apache Kafka broker on 127.0.0.1."""

    line: str
    version: str
    lib: Path
    data_dir: Path
    ports: Ports
    tls: TlsFiles
    process: subprocess.Popen[bytes]
    properties: dict[str, str] = field(default_factory=dict)

    @property
    def bootstrap(self) -> str:
        """The PLAINTEXT listener's bootstrap servers."""
        return self.address("PLAINTEXT")

    def address(self, listener: str) -> str:
        """host:port of one listener (PLAINTEXT, SASL_PLAINTEXT, SSL, SASL_SSL, MTLS)."""
        return f"127.0.0.1:{self.ports.listeners[listener]}"

    @property
    def log_file(self) -> Path:
        return self.data_dir / "broker.log"

    def stop(self, timeout: float = 30.0) -> None:
        """SIGTERM (a controlled shutdown), then SIGKILL if it lingers."""
        if self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()

    def kill(self) -> None:
        """SIGKILL the JVM: no shutdown at all, as a crash."""
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()

    def restart(self, *, kill: bool = False) -> None:
        """Stop (or kill -9) and start again on the same ports and log directories."""
        self.kill() if kill else self.stop()
        self.process = _launch(self.lib, self.data_dir, self.log_file)
        _wait_started(self)


def _launch(lib: Path, data_dir: Path, log_file: Path) -> subprocess.Popen[bytes]:
    with open(log_file, "ab") as log:
        return subprocess.Popen(
            ["java", *JVM_OPTIONS, "-cp", f"{lib}/*", "kafka.Kafka", "server.properties"],
            cwd=data_dir,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            # In the caller's process group: whatever stops the group (Ctrl-C, `kill -- -PGID`)
            # stops the broker too, even if the caller dies before it can.
        )


def _wait_started(broker: ApacheKafka, timeout: float = 120.0) -> None:
    """Until the log says the server started (after the launch) and every listener answers."""
    offset = broker.log_file.stat().st_size if broker.log_file.exists() else 0
    deadline = time.monotonic() + timeout
    started = False
    while time.monotonic() < deadline:
        if broker.process.poll() is not None:
            raise RuntimeError(
                f"Apache Kafka {broker.version} exited ({broker.process.returncode}); "
                f"see {broker.log_file}"
            )
        if not started:
            with open(broker.log_file, "rb") as log:
                log.seek(offset)
                started = STARTED_LINE.encode() in log.read()
        if started and all(
            answers_api_versions("127.0.0.1", port)
            for name, port in broker.ports.listeners.items()
            if PROTOCOLS[name] == "PLAINTEXT"
        ):
            return
        time.sleep(0.1)
    broker.kill()
    raise RuntimeError(f"Apache Kafka {broker.version} did not start within {timeout:.0f} s")


def _format(lib: Path, data_dir: Path) -> None:
    cluster_id = "-"
    while cluster_id.startswith("-"):  # `-t -…` reads as an option (Kafka's own ids avoid it too)
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()
    scram = [
        argument
        for name, password in USERS.items()
        for mechanism in ("SCRAM-SHA-256", "SCRAM-SHA-512")
        for argument in ("--add-scram", f"{mechanism}=[name={name},password={password}]")
    ]
    result = subprocess.run(
        [
            "java",
            "-Xmx256m",
            "-cp",
            f"{lib}/*",
            "kafka.tools.StorageTool",
            "format",
            "-t",
            cluster_id,
            "-c",
            "server.properties",
            *scram,
        ],
        cwd=data_dir,
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"formatting KRaft storage failed: {result.stdout}{result.stderr}")


def start_apache_kafka(
    data_dir: Path,
    line: str = "4.4",
    *,
    extra: dict[str, str] | None = None,
) -> ApacheKafka:
    """Resolve, configure, format and start a broker of release line `line` under `data_dir`."""
    lib = resolve(line)
    data_dir.mkdir(parents=True, exist_ok=True)
    tls = make_tls_files(data_dir / "tls")
    keystore = tls.broker_cert.with_name("broker-keystore.pem")
    keystore.write_bytes(tls.broker_key.read_bytes() + tls.broker_cert.read_bytes())
    keystore.chmod(0o600)
    ports = Ports.free()
    properties = server_properties(data_dir, ports, tls, extra)
    _write_properties(data_dir / "server.properties", properties)
    _format(lib, data_dir)
    log_file = data_dir / "broker.log"
    broker = ApacheKafka(
        line=line,
        version=versions()[line],
        lib=lib,
        data_dir=data_dir,
        ports=ports,
        tls=tls,
        process=_launch(lib, data_dir, log_file),
        properties=properties,
    )
    _wait_started(broker)
    return broker
