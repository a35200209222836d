"""What versions discovery reads: which module endpoint a URL names, which version to speak.

`--url` is either a module endpoint (`…/2.2.1/tokens`) or a partner's versions endpoint. For the
latter: versions → version details → the module's endpoint (in 2.2.1 the one with role SENDER).
URLs are never built from assumptions: the spec calls them descriptive only.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from yarl import URL

from producer.errors import (
    ConfigError,
    PartnerNotFoundError,
    PartnerProtocolError,
    PullError,
    VersionNotOfferedError,
)
from producer.ocpi.protocol.modules import MODULES, VERSION_PREFERENCE

_VERSION_IN_PATH = re.compile(r"/(2\.[0-9](?:\.[0-9])?)(?:/|$)")


def partner_url_problem(value: str) -> str | None:
    """What keeps `value` from being a partner's URL to start from, or None. (User info is
    refused, and not shown: it may hold a password.)"""
    if not value.startswith(("http://", "https://")):
        return "must be an http(s) URL"
    try:
        url = URL(value)
        url.port  # noqa: B018  (yarl checks the port's range when it is read)
    except (ValueError, TypeError) as error:
        return f"not a usable URL ({error})"
    if not url.host:
        return "the URL names no host"
    if url.raw_user is not None or url.raw_password is not None:
        return (
            "the URL holds user info (user:password@): OCPI authenticates by the token alone; "
            "give it with --token or the environment"
        )
    return None


@dataclass(frozen=True, slots=True)
class ModuleEndpoint:
    """The endpoint a pull fetches from, with the OCPI version it speaks."""

    url: URL
    module: str
    ocpi_version: str
    version_reason: str = ""  # why this version (for the summary)


def module_endpoint_from_url(
    url: URL, module: str | None, ocpi_version: str | None
) -> ModuleEndpoint | None:
    """The endpoint if `url` already is a module endpoint, else None (it is a versions URL)."""
    last = url.path.rstrip("/").rsplit("/", 1)[-1]
    if last not in MODULES:
        return None
    if module is not None and module != last:
        raise ConfigError(f"--module {module} does not match the URL, which ends in /{last}")
    version, reason = ocpi_version, "pinned by --ocpi-version"
    if version is None:
        found = _VERSION_IN_PATH.search(url.path)
        if found is None or found.group(1) not in VERSION_PREFERENCE:
            raise ConfigError(
                "cannot tell the OCPI version from the module URL; give --ocpi-version "
                + "|".join(VERSION_PREFERENCE)
            )
        version, reason = found.group(1), "read from the module URL's path"
    return ModuleEndpoint(url.with_fragment(None), last, version, reason)


def offered_versions(data: Any) -> dict[str, URL]:
    """The versions a versions endpoint lists, with their details URLs."""
    if not isinstance(data, list):
        raise PartnerProtocolError("versions endpoint did not return a list of versions")
    offered: dict[str, URL] = {}
    for item in data:
        if isinstance(item, dict) and isinstance(item.get("version"), str):
            url = item.get("url")
            if isinstance(url, str) and url.startswith(("http://", "https://")):
                offered[item["version"]] = URL(url)
    return offered


def choose_version(offered: dict[str, URL], wanted: str | None) -> tuple[str, URL, str]:
    """The version to pull in, its details URL, and why: the one pinned, else the highest
    both sides speak (2.3.0 > 2.2.1 > 2.1.1)."""
    listed = ", ".join(sorted(offered)) or "none"
    if wanted is not None:
        if wanted not in offered:
            raise VersionNotOfferedError(f"partner does not offer OCPI {wanted} (offers: {listed})")
        return wanted, offered[wanted], f"pinned by --ocpi-version (partner offers {listed})"
    for version in VERSION_PREFERENCE:
        if version in offered:
            reason = f"the highest version both sides speak (partner offers {listed})"
            return version, offered[version], reason
    raise VersionNotOfferedError(f"partner offers no OCPI version we speak (offers: {listed})")


def choose_endpoint(data: Any, module: str, version: str) -> URL:
    if not isinstance(data, dict) or not isinstance(data.get("endpoints"), list):
        raise PartnerProtocolError("version details did not contain an endpoints list")
    candidates: list[URL] = []
    for item in data["endpoints"]:
        if not isinstance(item, dict) or item.get("identifier") != module:
            continue
        url = item.get("url")
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            continue
        role = item.get("role")
        # 2.2+: the Sender interface is the one that serves GET lists; 2.1.1 has no roles.
        if version.startswith("2.1") or role is None or role == "SENDER":
            candidates.append(URL(url))
    if not candidates:
        raise PartnerNotFoundError(f"partner's OCPI {version} endpoints list no {module} SENDER")
    return candidates[0]


@dataclass(frozen=True, slots=True)
class OfferedEndpoint:
    """One endpoint of a version's details, and whether `pull` would fetch from it."""

    identifier: str
    role: str | None  # 2.1.1 has no roles
    url: str
    pulled: bool  # the endpoint `pull --module <identifier>` uses


@dataclass(frozen=True, slots=True)
class PartnerOffer:
    """What versions discovery finds: the versions offered, the one chosen and why, and the
    chosen version's endpoints. `failure` says why none could be chosen."""

    versions: dict[str, str]
    chosen: str | None
    reason: str
    endpoints: list[OfferedEndpoint]
    failure: PullError | None = None
