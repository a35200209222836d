"""OCPI client request headers. Pure (but for one log line): the token becomes a `str` only inside
the header value."""

from __future__ import annotations

import base64
import logging
import uuid
from dataclasses import dataclass
from typing import Literal

from pydantic import SecretStr

log = logging.getLogger("ocpi_puller")

TokenEncoding = Literal["base64", "plain"]
TokenEncodingSetting = Literal["base64", "plain", "auto"]


def version_token_encoding(ocpi_version: str) -> TokenEncoding:
    """The spec's rule: 2.1.1 sends the token as is, 2.2 and later Base64-encode it."""
    return "plain" if ocpi_version.startswith(("2.1", "2.0")) else "base64"


def other_encoding(encoding: TokenEncoding) -> TokenEncoding:
    """The encoding to try after a 401 in `auto` mode."""
    return "plain" if encoding == "base64" else "base64"


class TokenEncodingChoice:
    """Which encoding to send the token in: as configured, or in `auto` the version's rule,
    switched once to the other encoding when the partner refuses it (many 2.1.1 and 2.2
    servers do not encode; some answer a wrong encoding with OCPI 3000, not 401)."""

    def __init__(self, setting: TokenEncodingSetting, ocpi_version: str | None) -> None:
        self._setting = setting
        self._switched = False
        self.current: TokenEncoding = (
            setting if setting != "auto" else version_token_encoding(ocpi_version or "2.2.1")
        )

    @property
    def may_switch(self) -> bool:
        """In `auto`, until the one switch was made."""
        return self._setting == "auto" and not self._switched

    def use_version(self, ocpi_version: str) -> None:
        """The version is known: apply its rule unless a switch taught otherwise."""
        if self.may_switch:
            self.current = version_token_encoding(ocpi_version)

    def switch(self, reason: int | str) -> None:
        """The partner refused the token (`reason`): use the other encoding from now on."""
        self._switched = True
        previous, self.current = self.current, other_encoding(self.current)
        log.warning(
            "partner answered %s with a %s token; retrying %s-encoded (remembered for this pull)",
            reason,
            previous,
            self.current,
        )


def token_problem(token: str) -> str | None:
    """Why a token cannot be sent, or None. (Never says the token.)"""
    # A header cannot carry a control character: most often a line break inside a token file
    # or variable.
    if any(ord(c) < 32 or ord(c) == 127 for c in token):
        return (
            "the token holds a control character (a line break inside the token file or "
            "variable?): an HTTP header cannot carry it"
        )
    return None


def authorization_value(token: SecretStr, encoding: TokenEncoding) -> str:
    """`Token <credentials token>`, Base64 (RFC 4648, of the UTF-8 bytes) or plain."""
    raw = token.get_secret_value()
    if encoding == "base64":
        raw = base64.b64encode(raw.encode("utf-8")).decode("ascii")
    return f"Token {raw}"


@dataclass(frozen=True, slots=True)
class RoutingHeaders:
    """OCPI 2.2+ `OCPI-from-*`/`OCPI-to-*`: us and the partner (or hub) we address."""

    from_country_code: str | None = None
    from_party_id: str | None = None
    to_country_code: str | None = None
    to_party_id: str | None = None

    def as_headers(self) -> dict[str, str]:
        """Only the configured ones."""
        pairs = {
            "OCPI-from-country-code": self.from_country_code,
            "OCPI-from-party-id": self.from_party_id,
            "OCPI-to-country-code": self.to_country_code,
            "OCPI-to-party-id": self.to_party_id,
        }
        return {name: value.upper() for name, value in pairs.items() if value}


def request_headers(
    *,
    token: SecretStr,
    encoding: TokenEncoding,
    ocpi_version: str | None,
    correlation_id: str,
    routing: RoutingHeaders | None,
    module_request: bool,
) -> tuple[dict[str, str], str]:
    """Headers for one request, and its new X-Request-ID.

    X-Request-ID/X-Correlation-ID are 2.2+ (a new request ID per request, retries included; one
    correlation ID per pull). Routing headers go only to functional modules, never to the
    versions endpoints (2.2.1 transport and format).
    """
    request_id = str(uuid.uuid4())
    headers = {"Authorization": authorization_value(token, encoding)}
    if ocpi_version is None or not ocpi_version.startswith("2.1"):
        headers["X-Request-ID"] = request_id
        headers["X-Correlation-ID"] = correlation_id
        if module_request and routing is not None:
            headers.update(routing.as_headers())
    return headers, request_id
