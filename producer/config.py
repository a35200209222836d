"""Configuration, read once at the edge: command line > environment (`OCPI_PULLER_*`) > defaults.

`PullSettings` is the one settings object. A pull of one partner's module is a `PullTarget`,
built from the settings (`--url`, `--token`, ...) or, for many partners, from a YAML partners file
(`--partners`). Secrets are `SecretStr`, so a logged or repr'd config shows `**********`.
"""

from __future__ import annotations

import re
import ssl
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Literal, TypeVar, get_args

from pydantic import (
    AliasChoices,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

from producer.kafka.connection import KafkaConnection
from producer.kafka.reach import servers_problem
from producer.ocpi.paging.repair import LinkRepairSetting
from producer.ocpi.paging.walk import ProbePastEnd
from producer.ocpi.protocol.headers import token_problem
from producer.ocpi.protocol.modules import Module, OcpiVersion
from producer.ocpi.protocol.versions import partner_url_problem
from producer.warning_kinds import KINDS, parse_fail_on
from schemas.validation import ValidationMode

TokenEncodingSetting = Literal["base64", "plain", "auto"]
ENV_PREFIX = "OCPI_PULLER_"
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")

FlagGroup = Literal["partner", "what to pull", "scale and behaviour", "kafka", "output"]
FLAG_GROUPS: tuple[FlagGroup, ...] = get_args(FlagGroup)


@dataclass(frozen=True)
class Flag:
    """How a setting is offered on `pull`'s command line. Its help is the field's description,
    its variables are the field's (`env_names`); the CLI and README's test read both here."""

    group: FlagGroup
    name: str | None = None  # else `--<field-name>`
    aliases: tuple[str, ...] = ()  # more names for the flag
    shown_default: str | None = None  # in the help, where the field's default says too little
    yes_no: bool = False  # `--resume` / `--no-resume`
    bare: str | None = None  # the value of the flag given alone (`--probe-past-end`: on)
    metavar: str | None = None
    parse: Literal["auto|N", "log level"] | None = None  # else by the field's type


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


def concurrency_value(value: object) -> object:
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


_V = TypeVar("_V")


def _unless(problem: str | None, value: _V) -> _V:
    """`value`, or the problem a check found in it as the validation error."""
    if problem is not None:
        raise ValueError(problem)
    return value


def _upper(value: object) -> object:
    return value.strip().upper() if isinstance(value, str) else value


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


# The longest wait any flag may set: a week. Longer is a typo (and Kafka's clients take their
# timeouts in 32-bit milliseconds: 24.8 days at most).
MOST_WAIT_S = 7 * 24 * 3600


class PartnerOptions(BaseModel):
    """Per-partner behaviour, settable per partner in the partners file."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    token_encoding: Annotated[TokenEncodingSetting, Flag("partner")] = Field(
        default="auto",
        description="how the token is sent: auto follows the version and retries the other once",
    )
    limit: Annotated[int | None, Flag("what to pull", shown_default="1000")] = Field(
        default=None, gt=0, description="page size asked for (the partner may cap it)"
    )
    concurrency: Annotated[
        int | Literal["auto"],
        BeforeValidator(concurrency_value),
        Flag("scale and behaviour", parse="auto|N", metavar="auto|N"),
    ] = Field(
        default="auto",
        description="requests in flight per partner: auto finds the partner's capacity, a number "
        "pins it",
    )
    max_concurrency: Annotated[int, Flag("scale and behaviour")] = Field(
        default=32, ge=1, le=256, description="the most requests in flight auto may reach"
    )
    fanout: Annotated[int, Flag("scale and behaviour")] = Field(
        default=4, ge=1, le=32, description="pages fetched ahead in a window"
    )
    window_size: Annotated[int, Flag("scale and behaviour")] = Field(
        default=20_000, ge=1, description="target objects per date window"
    )
    request_timeout_s: Annotated[float, Flag("scale and behaviour")] = Field(
        default=30.0, gt=0, le=MOST_WAIT_S, description="seconds one partner request may take"
    )
    max_attempts: Annotated[int, Flag("scale and behaviour")] = Field(
        default=8,
        ge=1,
        le=50,
        description="attempts per request before the partner counts as down",
    )
    max_rereads: Annotated[int, Flag("scale and behaviour")] = Field(
        default=5,
        ge=1,
        le=50,
        description="reads of an unsplittable piece of an unstable list, its keys unioned",
    )
    rate_limit: Annotated[float | None, Flag("scale and behaviour", shown_default="none")] = Field(
        default=None, gt=0, description="requests per second to the partner"
    )
    rate_burst: Annotated[float | None, Flag("scale and behaviour", shown_default="the rate")] = (
        Field(default=None, gt=0, description="requests allowed at once above the rate")
    )
    probe_past_end: Annotated[
        ProbePastEnd, BeforeValidator(_probe_setting), Flag("what to pull", bare="on")
    ] = Field(
        default="auto",
        description="read past a page without Link: auto where totals or links are missing or "
        "contradict what arrived, on past every full page, off never (the flag alone: on)",
    )
    emit_tombstones: Annotated[bool, Flag("what to pull")] = Field(
        default=False, description="tombstone keys a complete full pull no longer finds"
    )
    skip_unchanged: Annotated[bool, Flag("what to pull")] = Field(
        default=False, description="produce only objects whose content changed"
    )
    max_page_bytes: Annotated[int, Flag("scale and behaviour")] = Field(
        default=64 * 1024 * 1024, gt=0, description="the largest page body accepted"
    )
    validation: Annotated[ValidationMode, Flag("what to pull")] = Field(
        default="lenient",
        description="lenient reads the dialects real partners write; strict dead-letters them",
    )
    fail_on: Annotated[
        str, BeforeValidator(_fail_on), Flag("output", metavar="WARNING[,WARNING…]")
    ] = Field(
        default="",
        description="warning kinds that make a complete pull exit 5 (error_kind warning), "
        "separated by commas, or all (every kind but the notices): "
        + ", ".join(kind.name for kind in KINDS),
    )

    @property
    def most_in_flight(self) -> int:
        """The most requests this partner can have in flight (a pinned number, or auto's bound)."""
        return self.max_concurrency if self.concurrency == "auto" else self.concurrency

    @property
    def uses_digests(self) -> bool:
        """Whether the pull reads and writes the digests topic."""
        return self.skip_unchanged or self.emit_tombstones

    @property
    def windows_at_once(self) -> int:
        """Windows pulled side by side: enough to give every permit a request."""
        if self.concurrency == "auto":
            return max(4, -(-self.max_concurrency // self.fanout))
        return self.concurrency

    link_repair: Annotated[LinkRepairSetting, Flag("what to pull")] = Field(
        default="auto",
        description="read by offset where a next link cannot be used as given; off refuses it",
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
        return _unless(partner_url_problem(value), value)

    @field_validator("token")
    @classmethod
    def _sendable_token(cls, value: SecretStr) -> SecretStr:
        return _unless(token_problem(value.get_secret_value()), value)


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
        allow_inf_nan=False,
    )

    url: Annotated[str | None, Flag("partner")] = Field(
        default=None,
        description="the partner's versions URL, or a module endpoint (…/2.2.1/tokens)",
    )
    token: Annotated[SecretStr | None, Flag("partner")] = Field(
        default=None, description="the credentials token (prefer the environment variable)"
    )
    module: Annotated[Module | None, Flag("partner")] = Field(
        default=None, description="which module to pull"
    )
    ocpi_version: Annotated[OcpiVersion | None, Flag("partner")] = Field(
        default=None, description="pin the version; else the highest both sides speak"
    )
    partner: Annotated[str | None, Flag("partner")] = Field(
        default=None,
        description="the partner's name in keys, headers and events (default: its host)",
    )
    partner_country: Annotated[str | None, Flag("partner")] = Field(
        default=None, description="the partner's country code (OCPI-to-*, 2.1.1 keys)"
    )
    partner_party: Annotated[str | None, Flag("partner")] = Field(
        default=None, description="the partner's party id (OCPI-to-*, 2.1.1 keys)"
    )
    from_country: Annotated[str | None, Flag("partner")] = Field(
        default=None, description="our country code (OCPI-from-country-code)"
    )
    from_party: Annotated[str | None, Flag("partner")] = Field(
        default=None, description="our party id (OCPI-from-party-id)"
    )
    partners_file: Annotated[Path | None, Flag("partner", name="--partners")] = Field(
        default=None,
        validation_alias=AliasChoices("OCPI_PULLER_PARTNERS"),
        description="a YAML file of partners to pull",
    )
    bootstrap_servers: Annotated[str, Flag("kafka")] = Field(
        default="localhost:9092",
        validation_alias=AliasChoices("OCPI_PULLER_BOOTSTRAP_SERVERS", "KAFKA_BOOTSTRAP_SERVERS"),
        description="Kafka bootstrap servers",
    )
    topic_prefix: Annotated[str, Flag("kafka")] = Field(
        default="ocpi", description="topics are <prefix>.<module>, <prefix>.progress, …"
    )
    topic_partitions: Annotated[int, Flag("kafka")] = Field(
        default=6, ge=1, description="partitions of topics this run creates"
    )
    replication_factor: Annotated[int, Flag("kafka")] = Field(
        default=1, ge=1, description="replication of topics this run creates"
    )
    date_from: Annotated[datetime | None, Flag("what to pull")] = Field(
        default=None, description="only objects with last_updated >= this (RFC 3339)"
    )
    date_to: Annotated[datetime | None, Flag("what to pull", shown_default="now")] = Field(
        default=None, description="only objects with last_updated < this"
    )
    pull_id: Annotated[str | None, Flag("what to pull")] = Field(
        default=None, description="name of this pull; the same id again resumes it"
    )
    resume: Annotated[
        bool | None, Flag("what to pull", shown_default="if one exists", yes_no=True)
    ] = Field(default=None, description="resume --pull-id from its checkpoint")
    incremental: Annotated[bool, Flag("what to pull")] = Field(
        default=False, description="from the last complete pull's date_to, less the overlap"
    )
    incremental_overlap_s: Annotated[int, Flag("what to pull")] = Field(
        default=300,
        ge=0,
        le=366 * 24 * 3600,
        description="seconds the incremental window reaches back",
    )
    shard_index: Annotated[int, Flag("scale and behaviour")] = Field(
        default=0,
        ge=0,
        validation_alias=AliasChoices("OCPI_PULLER_SHARD_INDEX", "JOB_COMPLETION_INDEX"),
        description="this process's shard",
    )
    shard_count: Annotated[int, Flag("scale and behaviour")] = Field(
        default=1, ge=1, description="processes sharing the pull (all with one --pull-id)"
    )
    plan_wait_s: Annotated[float, Flag("scale and behaviour")] = Field(
        default=600.0,
        gt=0,
        le=MOST_WAIT_S,
        description="how long shards > 0 wait for shard 0's plan",
    )
    max_parallel_pulls: Annotated[int, Flag("scale and behaviour")] = Field(
        default=4, ge=1, description="partner modules pulled at once"
    )
    heartbeat_s: Annotated[float, Flag("scale and behaviour")] = Field(
        default=30.0,
        gt=0,
        le=MOST_WAIT_S,
        description="seconds between heartbeat events of a running pull",
    )
    kafka_deadline_s: Annotated[float, Flag("kafka")] = Field(
        default=300.0,
        gt=0,
        le=MOST_WAIT_S,
        description="how long an outage during a pull is waited out",
    )
    kafka_connect_timeout_s: Annotated[float, Flag("kafka")] = Field(
        default=30.0,
        gt=0,
        le=MOST_WAIT_S,
        description="how long a broker never reached is waited for",
    )
    kafka_security_protocol: Annotated[
        Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"], Flag("kafka")
    ] = Field(default="PLAINTEXT", description="how to talk to the brokers")
    kafka_sasl_mechanism: Annotated[
        Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None, Flag("kafka")
    ] = Field(default=None, description="SASL mechanism")
    kafka_sasl_username: Annotated[str | None, Flag("kafka")] = Field(
        default=None, description="SASL user name"
    )
    kafka_sasl_password: Annotated[SecretStr | None, Flag("kafka")] = Field(
        default=None, description="SASL password (prefer the environment variable)"
    )
    kafka_ssl_cafile: Annotated[Path | None, Flag("kafka", aliases=("--kafka-ca-file",))] = Field(
        default=None,
        validation_alias=AliasChoices("OCPI_PULLER_KAFKA_SSL_CAFILE", "OCPI_PULLER_KAFKA_CA_FILE"),
        description="CA certificates to verify the brokers with",
    )
    kafka_ssl_certfile: Annotated[Path | None, Flag("kafka")] = Field(
        default=None, description="mutual TLS: this client's certificate (PEM)"
    )
    kafka_ssl_keyfile: Annotated[Path | None, Flag("kafka")] = Field(
        default=None, description="mutual TLS: this client's private key (PEM)"
    )
    kafka_replay_s: Annotated[float, Flag("kafka")] = Field(
        default=5.0,
        ge=0,
        le=MOST_WAIT_S,
        description="after a lost broker, re-read what it acknowledged this long before (0: off)",
    )
    kafka_request_timeout_s: Annotated[float, Flag("kafka")] = Field(
        default=30.0,
        gt=0,
        le=MOST_WAIT_S,
        description="an acknowledgement slower than this is reported, then waited for up to the "
        "deadline (never resent)",
    )
    max_bytes_in_flight: Annotated[int, Flag("kafka")] = Field(
        default=32 * 1024 * 1024,
        ge=1024,
        description="per pull, bytes of records produced and not yet acknowledged (exactly-once: "
        "not yet committed); a page larger than this goes alone",
    )
    delivery: Annotated[Literal["at-least-once", "exactly-once"], Flag("kafka")] = Field(
        default="at-least-once",
        description="exactly-once: Kafka transactions, for read_committed consumers",
    )
    transaction_pages: Annotated[int, Flag("kafka")] = Field(
        default=20, ge=1, description="exactly-once: acknowledged pages per transaction"
    )
    transaction_ms: Annotated[int, Flag("kafka")] = Field(
        default=2000, ge=1, description="exactly-once: milliseconds per transaction"
    )
    ca_bundle: Annotated[Path | None, Flag("scale and behaviour")] = Field(
        default=None, description="CA certificates to verify the partner's TLS with"
    )
    insecure_skip_tls_verify: Annotated[bool, Flag("scale and behaviour")] = Field(
        default=False, description="do not verify the partner's certificate (loud)"
    )
    output: Annotated[Literal["text", "json"], Flag("output")] = Field(
        default="text", description="text for people, json for one summary line"
    )
    no_progress_bar: Annotated[
        bool | None, Flag("output", shown_default="the bar on a terminal")
    ] = Field(default=None, description="log lines instead of the live bar on a terminal")
    # The older variable, OCPI_PULLER_PROGRESS_BAR=false, still read; --no-progress-bar wins.
    progress_bar: bool = True
    log_level: Annotated[
        Literal["DEBUG", "INFO", "WARNING", "ERROR"],
        BeforeValidator(_upper),
        Flag("output", parse="log level"),
    ] = Field(default="INFO", description="DEBUG, INFO, WARNING or ERROR, any case")

    @property
    def shows_progress_bar(self) -> bool:
        """The live bar, unless switched off by --no-progress-bar or the older variable."""
        if self.no_progress_bar is not None:
            return not self.no_progress_bar
        return self.progress_bar

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

    @field_validator("bootstrap_servers")
    @classmethod
    def _servers(cls, value: str) -> str:
        return _unless(servers_problem(value), value)

    @field_validator("partner", "pull_id")
    @classmethod
    def _name(cls, value: str | None) -> str | None:
        # As a partners file's names: each is a part of keys, headers and checkpoint ids.
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
            raise ValueError(
                f"shard index {self.shard_index} is not below the shard count "
                f"{self.shard_count} (the index comes from --shard-index, "
                "OCPI_PULLER_SHARD_INDEX or JOB_COMPLETION_INDEX; give --shard-count)"
            )
        if self.shard_count > 1 and self.pull_id is None:
            raise ValueError("a sharded pull needs one --pull-id shared by every shard")
        if (self.kafka_ssl_certfile is None) != (self.kafka_ssl_keyfile is None):
            raise ValueError("--kafka-ssl-certfile and --kafka-ssl-keyfile go together")
        if self.kafka_ssl_certfile is not None and self.kafka_ssl_keyfile is not None:
            _loadable_client_certificate(self.kafka_ssl_certfile, self.kafka_ssl_keyfile)
        sasl = self.kafka_security_protocol.startswith("SASL")
        if sasl and (not self.kafka_sasl_username or self.kafka_sasl_password is None):
            raise ValueError(
                f"{self.kafka_security_protocol} needs --kafka-sasl-username and "
                "--kafka-sasl-password"
            )
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
