"""The partners file (`--partners partners.yaml`): many partners and modules in one run.

Each partner names its URL, its token (from an environment variable or a file, relative to the
YAML file), its modules and per-partner options over the file's defaults and the run's flags.
Errors name the partner and the YAML key.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator

from producer.config import (
    NAME_PATTERN,
    PartnerOptions,
    PullSettings,
    PullTarget,
    default_partner_name,
)
from producer.errors import ConfigError
from producer.observe.secrets import mask_in_logs
from producer.ocpi.protocol.modules import Module, OcpiVersion
from producer.setting_names import describe_validation_error


class PartnerEntry(BaseModel):
    """One partner in the partners file."""

    model_config = ConfigDict(extra="forbid")

    name: str
    url: str
    token_env: str | None = None
    token_file: Path | None = None
    modules: list[Module] = Field(min_length=1)

    @field_validator("modules", mode="before")
    @classmethod
    def _one_module(cls, value: Any) -> Any:
        # `modules: locations` is a one-item list to anyone reading the YAML.
        return [value] if isinstance(value, str) else value

    ocpi_version: OcpiVersion | None = None
    country_code: str | None = None
    party_id: str | None = None
    options: dict[str, Any] = Field(default_factory=dict)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not NAME_PATTERN.fullmatch(value):
            raise ValueError("1-63 letters, digits, '.', '_' or '-'")
        return value


class PartnersFile(BaseModel):
    """`partners.yaml`: defaults for every partner, then the partners."""

    model_config = ConfigDict(extra="forbid")

    defaults: dict[str, Any] = Field(default_factory=dict)
    partners: list[PartnerEntry] = Field(min_length=1)


def _read_token(entry: PartnerEntry, folder: Path) -> SecretStr:
    if (entry.token_env is None) == (entry.token_file is None):
        raise ConfigError(f"partner {entry.name}: give exactly one of token_env or token_file")
    if entry.token_env is not None:
        value = os.environ.get(entry.token_env, "").strip()
        if not value:
            raise ConfigError(
                f"partner {entry.name}: token_env: variable {entry.token_env} is empty"
            )
        return SecretStr(value)
    assert entry.token_file is not None
    path = folder / entry.token_file  # relative to the partners file, wherever it is run from
    try:
        value = path.read_text(encoding="utf-8").strip()
    except OSError as error:
        raise ConfigError(
            f"partner {entry.name}: token_file: cannot read {path}: {error.strerror}"
        ) from None
    except UnicodeDecodeError:
        # Not the decoder's message: it quotes the offending byte of the secret.
        raise ConfigError(f"partner {entry.name}: token_file: {path} is not UTF-8") from None
    if not value:
        raise ConfigError(f"partner {entry.name}: token_file: {path} is empty")
    return SecretStr(value)


def describe_partners_error(error: ValidationError, document: Any, where: str = "") -> str:
    """One line: each problem with the partner it concerns and its YAML key."""
    parts = []
    for item in error.errors():
        loc = list(item["loc"])
        prefix = where
        if len(loc) >= 2 and loc[0] == "partners" and isinstance(loc[1], int):
            prefix = f"partner {_partner_name(document, loc[1])}: "
            loc = loc[2:]
        key = ".".join(str(p) for p in loc)
        message = str(item["msg"]).removeprefix("Value error, ")
        if not key and prefix == "":
            key = "the file (a mapping of defaults and partners)"
        parts.append(f"{prefix}{key}: {message}" if key else f"{prefix}{message}")
    return "; ".join(parts)


def _partner_name(document: Any, index: int) -> str:
    try:
        name = document["partners"][index]["name"]
    except (TypeError, KeyError, IndexError):
        name = None
    return str(name) if isinstance(name, str) and name else f"#{index + 1}"


def load_partners_file(path: Path, base: PartnerOptions) -> list[PullTarget]:
    """Every (partner, module) of a partners file, each with its merged options."""
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise ConfigError(f"cannot read partners file {path}: {error.strerror}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"partners file {path} is not UTF-8 text") from None
    except yaml.YAMLError as error:
        raise ConfigError(f"partners file {path} is not valid YAML: {error}") from None
    try:
        parsed = PartnersFile.model_validate(document)
    except ValidationError as error:
        raise ConfigError(
            f"partners file {path}: {describe_partners_error(error, document)}"
        ) from None
    defaults = _options(base.model_dump(), parsed.defaults, "defaults.", "", path)
    targets: list[PullTarget] = []
    seen: set[tuple[str, str]] = set()
    for entry in parsed.partners:
        token = _read_token(entry, path.parent)
        mask_in_logs(token.get_secret_value())
        where = f"partner {entry.name}: "
        options = _options(defaults.model_dump(), entry.options, "options.", where, path)
        for module in entry.modules:
            if (entry.name, module) in seen:
                raise ConfigError(f"partner {entry.name} lists module {module} twice")
            seen.add((entry.name, module))
            targets.append(_target(entry, module, token, options, where, path))
    return targets


def _target(
    entry: PartnerEntry,
    module: Module,
    token: SecretStr,
    options: PartnerOptions,
    where: str,
    path: Path,
) -> PullTarget:
    try:
        return PullTarget(
            partner=entry.name,
            url=entry.url,
            token=token,
            module=module,
            ocpi_version=entry.ocpi_version,
            partner_country=entry.country_code,
            partner_party=entry.party_id,
            options=options,
        )
    except ValidationError as error:
        described = describe_validation_error(error)
        raise ConfigError(f"partners file {path}: {where}{described}") from None


def _options(
    base: dict[str, Any], overrides: dict[str, Any], key: str, where: str, path: Path
) -> PartnerOptions:
    """Options over `base`, validated as a whole so a misspelt option is refused, not dropped;
    errors name the partner (`where`) and the YAML key (`defaults.` or `options.`)."""
    try:
        return PartnerOptions.model_validate({**base, **overrides})
    except ValidationError as error:
        parts = [
            f"{where}{key}{'.'.join(str(p) for p in e['loc'])}: "
            + str(e["msg"]).removeprefix("Value error, ")
            for e in error.errors()
        ]
        raise ConfigError(f"partners file {path}: " + "; ".join(parts)) from None


def targets(settings: PullSettings) -> list[PullTarget]:
    """The partner modules a run pulls: from the partners file, or the command line."""
    if settings.partners_file is not None:
        if settings.url is not None:
            raise ConfigError("give either --partners or --url, not both")
        listed = load_partners_file(settings.partners_file, settings.options)
        if settings.module is None:
            return listed
        # --module picks that module of every partner listing it (never ignored: an operator
        # who asked for locations must not get everything the file lists).
        chosen = [target for target in listed if target.module == settings.module]
        if not chosen:
            raise ConfigError(
                f"--module {settings.module}: the partners file lists it for no partner"
            )
        return chosen
    if settings.url is None:
        raise ConfigError("--url (or OCPI_PULLER_URL) is required, or --partners FILE")
    if settings.token is None or not settings.token.get_secret_value().strip():
        raise ConfigError("--token (or OCPI_PULLER_TOKEN) is required")
    try:
        return [
            PullTarget(
                partner=settings.partner or default_partner_name(settings),
                url=settings.url,
                # As a partners file's tokens: the line break `echo` leaves in a secret is not
                # part of the token.
                token=SecretStr(settings.token.get_secret_value().strip()),
                module=settings.module,
                ocpi_version=settings.ocpi_version,
                partner_country=settings.partner_country,
                partner_party=settings.partner_party,
                options=settings.options,
            )
        ]
    except ValidationError as error:
        raise ConfigError(describe_validation_error(error, flags=True)) from None
