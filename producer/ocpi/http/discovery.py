"""Versions discovery over HTTP: from the URL an operator gives to the module endpoint to pull.

`--url` is either a module endpoint (`…/2.2.1/tokens`) or a partner's versions endpoint. For the
latter: versions → version details → the module's endpoint (in 2.2.1 the one with role SENDER).
The decisions are pure (protocol/versions.py); this module makes the two requests.
"""

from __future__ import annotations

from typing import Any

from yarl import URL

from producer.errors import ConfigError, PartnerAuthError
from producer.ocpi.http.client import OcpiHttp
from producer.ocpi.protocol.modules import MODULES
from producer.ocpi.protocol.versions import (
    ModuleEndpoint,
    OfferedEndpoint,
    PartnerOffer,
    choose_endpoint,
    choose_version,
    module_endpoint_from_url,
    offered_versions,
)


async def discover(
    http: OcpiHttp, url: URL, module: str | None, ocpi_version: str | None
) -> ModuleEndpoint:
    """Resolve the module endpoint to pull, following versions discovery when needed."""
    direct = module_endpoint_from_url(url, module, ocpi_version)
    if direct is not None:
        http.set_version(direct.ocpi_version)
        return direct
    if module is None:
        raise ConfigError("--module is required with a versions URL")
    versions = await http.get_envelope(url)
    offered = offered_versions(versions.data_value)
    version, details_url, reason = choose_version(offered, ocpi_version)
    http.set_version(version)
    details = await http.get_envelope(details_url)
    endpoint = choose_endpoint(details.data_value, module, version)
    return ModuleEndpoint(endpoint, module, version, reason)


async def describe_offer(http: OcpiHttp, url: URL, wanted: str | None) -> PartnerOffer:
    """Versions discovery as `pull` does it, reported in full (for `ocpi-puller discover`)."""
    versions = await http.get_envelope(url)
    offered = {v: http.redact(u) for v, u in offered_versions(versions.data_value).items()}
    try:
        version, details_url, reason = choose_version(offered_versions(versions.data_value), wanted)
    except PartnerAuthError as refused:
        return PartnerOffer(offered, None, str(refused), [], refused)
    http.set_version(version)
    details = (await http.get_envelope(details_url)).data_value
    return PartnerOffer(offered, version, reason, _endpoints(http, details, version))


def _endpoints(http: OcpiHttp, details: Any, version: str) -> list[OfferedEndpoint]:
    pulled: dict[str, URL] = {}
    for module in MODULES:
        try:
            pulled[module] = choose_endpoint(details, module, version)
        except PartnerAuthError:
            continue  # not offered as a sender: listed without the mark
    found: list[OfferedEndpoint] = []
    for item in details["endpoints"]:
        if not isinstance(item, dict) or not isinstance(item.get("identifier"), str):
            continue
        url, role = item.get("url"), item.get("role")
        if not isinstance(url, str):
            continue
        identifier = item["identifier"]
        chosen = pulled.get(identifier)
        mark = (
            chosen is not None
            and URL(url) == chosen
            and not any(e.pulled and e.identifier == identifier for e in found)
        )
        found.append(
            OfferedEndpoint(
                identifier, role if isinstance(role, str) else None, http.redact(url), mark
            )
        )
    return found
