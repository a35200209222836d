"""Configuration, read once at the edge: command line > environment (`OCPI_PULLER_*`) > defaults.

`PullSettings` is the one settings object. A pull of one partner's module is a `PullTarget`,
built from the settings (`--url`, `--token`, ...) or, for many partners, from a YAML partners file
(`--partners`). Secrets are `SecretStr`, so a logged or repr'd config shows `**********`.
"""

from __future__ import annotations

import os
import re
import ssl
from collections.abc import Collection
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Literal

from pydantic import (
    AliasChoices,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

from producer.kafka.connection import KafkaConnection
from producer.ocpi.paging.repair import LinkRepairSetting
from producer.ocpi.paging.walk import ProbePastEnd
from producer.ocpi.protocol.modules import Module, OcpiVersion
from producer.warning_kinds import parse_fail_on
from schemas.validation import ValidationMode

TokenEncodingSetting = Literal["base64", "plain", "auto"]
ENV_PREFIX = "OCPI_PULLER_"
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")


def _utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)  # OCPI: a DateTime without zone is UTC
    return value.astimezone(UTC)


MAX_CONCURRENCY = 256


def _fail_on(value: object) -> str:
    """`--fail-on`: kinds separated by commas (a list in a partners file), or `all`."""
    if isinstance(value, (list, tuple)):
        value = ",".join(str(item) for item in value)
    if not isinstance(value, str):
        raise ValueError("must be warning kinds separated by commas, or all")
    return ",".join(parse_fail_on(value))


def _concurrency(value: object) -> object:
    """`auto`, or a whole number of requests in flight: one clear message for anything else."""
    if isinstance(value, str) and value.strip().lower() == "auto":
        return "auto"
    try:
        number = int(str(value).strip()) if not isinstance(value, int) else value
    except ValueError:
        number = None
    if isinstance(value, bool) or number is None or not 1 <= number <= MAX_CONCURRENCY:
        raise ValueError(f"must be auto or a whole number from 1 to {MAX_CONCURRENCY}")
    return number


def _probe_setting(value: object) -> object:
    """`auto`, `on` or `off`; a boolean (the older switch, partners files) is `on` or `off`."""
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, str):
        text = value.strip().lower()
        return {"true": "on", "yes": "on", "1": "on", "false": "off", "no": "off", "0": "off"}.get(
            text, text
        )
    return value


class PartnerOptions(BaseModel):
    """Per-partner behaviour, settable per partner in the partners file."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    token_encoding: TokenEncodingSetting = "auto"
    limit: int | None = Field(default=None, gt=0)
    concurrency: Annotated[int | Literal["auto"], BeforeValidator(_concurrency)] = Field(
        default="auto", description="requests in flight per partner; auto finds its capacity"
    )
    max_concurrency: int = Field(default=32, ge=1, le=256, description="the bound of auto")
    fanout: int = Field(default=4, ge=1, le=32, description="pages fetched ahead per window")
    window_size: int = Field(default=20_000, ge=1, description="target objects per date window")
    request_timeout_s: float = Field(default=30.0, gt=0)
    max_attempts: int = Field(default=8, ge=1, le=50)
    max_rereads: int = Field(
        default=5,
        ge=1,
        le=50,
        description="reads of a window piece whose order is unstable and cannot be split",
    )
    rate_limit: float | None = Field(default=None, gt=0, description="requests per second")
    rate_burst: float | None = Field(default=None, gt=0)
    probe_past_end: Annotated[ProbePastEnd, BeforeValidator(_probe_setting)] = Field(
        default="auto",
        description="read past a page without Link: auto where nothing shows it is the end",
    )
    emit_tombstones: bool = False
    skip_unchanged: bool = False
    max_page_bytes: int = Field(default=64 * 1024 * 1024, gt=0)
    validation: ValidationMode = Field(
        default="lenient", description="lenient reads the dialects partners write; strict refuses"
    )
    fail_on: Annotated[str, BeforeValidator(_fail_on)] = Field(
        default="", description="warning kinds that fail a complete pull (exit 5), or all"
    )

    @property
    def most_in_flight(self) -> int:
        """The most requests this partner can have in flight (a pinned number, or auto's bound)."""
        return self.max_concurrency if self.concurrency == "auto" else self.concurrency

    @property
    def windows_at_once(self) -> int:
        """Windows pulled side by side: enough to give every permit a request."""
        if self.concurrency == "auto":
            return max(4, -(-self.max_concurrency // self.fanout))
        return self.concurrency

    link_repair: LinkRepairSetting = Field(
        default="auto", description="read by offset where a next link cannot be used as given"
    )


class PullTarget(BaseModel):
    """One partner module to pull: where, with which credentials, as whom."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    partner: str
    url: str
    token: SecretStr
    module: Module | None = None
    ocpi_version: OcpiVersion | None = None
    partner_country: str | None = Field(default=None, min_length=2, max_length=2)
    partner_party: str | None = Field(default=None, min_length=3, max_length=3)
    options: PartnerOptions = PartnerOptions()

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must be an http(s) URL")
        return value


class PullSettings(BaseSettings, PartnerOptions):
    """Everything `ocpi-puller pull` can be told; flags override `OCPI_PULLER_*` variables.

    The per-partner options (`PartnerOptions`) are fields here too, so they are flat flags and
    variables (`--concurrency`, `OCPI_PULLER_CONCURRENCY`); a partners file can override them
    per partner.
    """

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        extra="ignore",
        frozen=True,
        # Flags arrive by field name; the environment only by the aliases below. (A field name
        # among the aliases would also be read, unprefixed, from the environment: SHARD_INDEX.)
        populate_by_name=True,
    )

    url: str | None = None
    token: SecretStr | None = None
    module: Module | None = None
    ocpi_version: OcpiVersion | None = None
    partner: str | None = Field(default=None, description="name used in keys, headers, events")
    partner_country: str | None = None
    partner_party: str | None = None
    from_country: str | None = None
    from_party: str | None = None
    partners_file: Path | None = Field(
        default=None, validation_alias=AliasChoices("OCPI_PULLER_PARTNERS")
    )
    bootstrap_servers: str = Field(
        default="localhost:9092",
        validation_alias=AliasChoices("OCPI_PULLER_BOOTSTRAP_SERVERS", "KAFKA_BOOTSTRAP_SERVERS"),
    )
    topic_prefix: str = "ocpi"
    topic_partitions: int = Field(default=6, ge=1)
    replication_factor: int = Field(default=1, ge=1)
    date_from: datetime | None = None
    date_to: datetime | None = None
    pull_id: str | None = None
    resume: bool | None = None
    incremental: bool = False
    incremental_overlap_s: int = Field(default=300, ge=0)
    shard_index: int = Field(
        default=0,
        ge=0,
        validation_alias=AliasChoices("OCPI_PULLER_SHARD_INDEX", "JOB_COMPLETION_INDEX"),
    )
    shard_count: int = Field(default=1, ge=1)
    plan_wait_s: float = Field(default=600.0, gt=0, description="shards > 0 wait for the plan")
    max_parallel_pulls: int = Field(default=4, ge=1, description="partners pulled at once")
    heartbeat_s: float = Field(
        default=30.0, gt=0, description="seconds between heartbeat events of a running pull"
    )
    kafka_deadline_s: float = Field(
        default=300.0, gt=0, description="how long an outage during a pull is waited out"
    )
    kafka_connect_timeout_s: float = Field(
        default=30.0, gt=0, description="how long a broker never reached at start is waited for"
    )
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    kafka_sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = None
    kafka_sasl_username: str | None = None
    kafka_sasl_password: SecretStr | None = None
    kafka_ssl_cafile: Path | None = Field(
        default=None,
        validation_alias=AliasChoices("OCPI_PULLER_KAFKA_SSL_CAFILE", "OCPI_PULLER_KAFKA_CA_FILE"),
    )
    kafka_ssl_certfile: Path | None = None
    kafka_ssl_keyfile: Path | None = None
    kafka_replay_s: float = Field(
        default=5.0,
        ge=0,
        description="after a broker outage, re-read what was acknowledged this long before it",
    )
    kafka_request_timeout_s: float = Field(
        default=30.0,
        gt=0,
        description="an ack slower than this is reported, and waited for (never resent)",
    )
    delivery: Literal["at-least-once", "exactly-once"] = Field(
        default="at-least-once",
        description="exactly-once: objects, dead letters and checkpoints in Kafka transactions",
    )
    transaction_pages: int = Field(
        default=20, ge=1, description="exactly-once: acknowledged pages per transaction (at most)"
    )
    transaction_ms: int = Field(
        default=2000, ge=1, description="exactly-once: how long a transaction gathers pages"
    )
    ca_bundle: Path | None = None
    insecure_skip_tls_verify: bool = False
    output: Literal["text", "json"] = "text"
    progress_bar: bool = True

    @property
    def options(self) -> PartnerOptions:
        """The per-partner options as given for this run (defaults for a partners file)."""
        return PartnerOptions.model_validate(
            {name: getattr(self, name) for name in PartnerOptions.model_fields}
        )

    @field_validator("date_from", "date_to")
    @classmethod
    def _as_utc(cls, value: datetime | None) -> datetime | None:
        return _utc(value)

    @field_validator("ca_bundle", "kafka_ssl_cafile")
    @classmethod
    def _loadable_ca_file(cls, value: Path | None) -> Path | None:
        # Checked here so an unreadable bundle is a config error now, not a failure mid-pull.
        if value is not None:
            try:
                ssl.create_default_context(cafile=str(value))
            except OSError as error:  # ssl.SSLError included
                reason = getattr(error, "reason", None) or error.strerror or str(error)
                raise ValueError(f"cannot load CA certificates from {value}: {reason}") from None
        return value

    @field_validator("topic_prefix")
    @classmethod
    def _topic_prefix(cls, value: str) -> str:
        if not re.fullmatch(r"[A-Za-z0-9._-]{1,200}", value):
            raise ValueError("may only contain letters, digits, '.', '_' and '-'")
        return value

    @field_validator("pull_id")
    @classmethod
    def _pull_id(cls, value: str | None) -> str | None:
        if value is not None and not NAME_PATTERN.fullmatch(value):
            raise ValueError("1-63 letters, digits, '.', '_' or '-', starting with a letter/digit")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> PullSettings:
        if self.date_from and self.date_to and self.date_from >= self.date_to:
            raise ValueError("date_from must be before date_to")
        if self.date_from and self.date_to is None and self.date_from >= datetime.now(UTC):
            raise ValueError(
                f"--date-from {self.date_from.isoformat()} is not in the past: nothing can have "
                "been updated since (give --date-to, or a date_from before now)"
            )
        if self.resume and self.pull_id is None:
            raise ValueError("--resume needs the --pull-id of the pull to resume")
        if self.shard_index >= self.shard_count:
            raise ValueError(f"shard index {self.shard_index} is not below shard count")
        if self.shard_count > 1 and self.pull_id is None:
            raise ValueError("a sharded pull needs one --pull-id shared by every shard")
        if (self.kafka_ssl_certfile is None) != (self.kafka_ssl_keyfile is None):
            raise ValueError("--kafka-ssl-certfile and --kafka-ssl-keyfile go together")
        if self.kafka_ssl_certfile is not None and self.kafka_ssl_keyfile is not None:
            _loadable_client_certificate(self.kafka_ssl_certfile, self.kafka_ssl_keyfile)
        if self.incremental and self.date_from is not None:
            raise ValueError("--incremental computes date_from itself; do not also give it")
        return self

    def kafka_connection(self) -> KafkaConnection:
        """How to reach Kafka (the same for every client of this run)."""
        return KafkaConnection(
            bootstrap_servers=self.bootstrap_servers,
            security_protocol=self.kafka_security_protocol,
            sasl_mechanism=self.kafka_sasl_mechanism,
            sasl_username=self.kafka_sasl_username,
            sasl_password=self.kafka_sasl_password,
            ssl_cafile=self.kafka_ssl_cafile,
            ssl_certfile=self.kafka_ssl_certfile,
            ssl_keyfile=self.kafka_ssl_keyfile,
        )


def _loadable_client_certificate(certfile: Path, keyfile: Path) -> None:
    # Checked at start, so a bad file is a config error now, not a TLS failure later.
    try:
        ssl.create_default_context().load_cert_chain(str(certfile), str(keyfile))
    except OSError as error:  # ssl.SSLError included
        reason = getattr(error, "reason", None) or error.strerror or str(error)
        raise ValueError(
            f"cannot load the client certificate {certfile} with key {keyfile}: {reason}"
        ) from None


def default_partner_name(settings: PullSettings) -> str:
    """The partner's identity if known, else the URL's host: stable across runs."""
    if settings.partner_country and settings.partner_party:
        return f"{settings.partner_country}-{settings.partner_party}".upper()
    host = (settings.url or "").split("//", 1)[-1].split("/", 1)[0]
    host = host.rpartition("@")[2]  # user info may hold a password: never in a name
    name = re.sub(r"-{2,}", "-", re.sub(r"[^A-Za-z0-9._-]", "-", host)).strip("-._")[:63]
    return name or "partner"


def describe_validation_error(
    error: ValidationError, *, flags: bool = False, given: Collection[str] = ()
) -> str:
    """One line for every pydantic error, joined: `where: message`. With `flags`, a setting is
    named the way the operator set it: its flag when `given` on the command line, else the
    environment variable that is set (`JOB_COMPLETION_INDEX`, not the alias it stands for)."""
    parts = []
    for item in error.errors():
        location = ".".join(str(p) for p in item["loc"])
        field = _field_named(location) if flags else None
        if field is not None:
            location = _where_set(field, given)
        message = str(item["msg"]).removeprefix("Value error, ")
        parts.append(f"{location}: {message}" if location else message)
    return "; ".join(parts)


def _field_named(location: str) -> str | None:
    """The setting an error location names: a field, or one of its environment variables."""
    if location in PullSettings.model_fields:
        return location
    return next((f for f in PullSettings.model_fields if location in env_names(f)), None)


def _where_set(field: str, given: Collection[str]) -> str:
    if field in given:
        return flag_name(field)
    names = env_names(field)
    chosen = [name for name in names if name in os.environ] or [flag_name(field), *names]
    return " / ".join(chosen)


def flag_name(field: str) -> str:
    """`date_from` → `--date-from`: the flag of a setting."""
    return "--partners" if field == "partners_file" else "--" + field.replace("_", "-")


def env_names(field: str) -> list[str]:
    """The environment variables a setting is read from (its aliases, else the prefixed name)."""
    alias = PullSettings.model_fields[field].validation_alias
    choices = getattr(alias, "choices", None)
    if choices:
        return [str(c) for c in choices]
    return [ENV_PREFIX + field.upper()]
