"""OCPI request headers (ocpi/protocol/headers.py): token encodings, request IDs, routing."""

from __future__ import annotations

import base64
import uuid

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import SecretStr

from producer.ocpi.protocol.headers import (
    RoutingHeaders,
    authorization_value,
    other_encoding,
    request_headers,
    version_token_encoding,
)

TOKEN = SecretStr("example-token")
ROUTING = RoutingHeaders(
    from_country_code="nl", from_party_id="abc", to_country_code="de", to_party_id="xyz"
)
ROUTING_NAMES = {
    "OCPI-from-country-code",
    "OCPI-from-party-id",
    "OCPI-to-country-code",
    "OCPI-to-party-id",
}


def headers_for(
    version: str | None,
    *,
    routing: RoutingHeaders | None = ROUTING,
    module_request: bool = True,
    encoding: str = "base64",
    token: SecretStr = TOKEN,
    correlation_id: str = "corr-1",
) -> tuple[dict[str, str], str]:
    return request_headers(
        token=token,
        encoding=encoding,  # type: ignore[arg-type]
        ocpi_version=version,
        correlation_id=correlation_id,
        routing=routing,
        module_request=module_request,
    )


# --- encodings -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("version", "encoding"),
    [
        ("2.0", "plain"),
        ("2.1", "plain"),
        ("2.1.1", "plain"),
        ("2.2", "base64"),
        ("2.2.1", "base64"),
        ("2.3.0", "base64"),
        ("3.0", "base64"),
    ],
)
def test_version_token_encoding(version: str, encoding: str) -> None:
    assert version_token_encoding(version) == encoding


def test_other_encoding_flips() -> None:
    assert other_encoding("base64") == "plain"
    assert other_encoding("plain") == "base64"


@pytest.mark.parametrize(
    ("token", "encoding", "expected"),
    [
        # The 2.3.0 spec's example has a stray newline in its Base64; this is the right value.
        ("example-token", "base64", "Token ZXhhbXBsZS10b2tlbg=="),
        ("example-token", "plain", "Token example-token"),
        ("a", "base64", "Token YQ=="),
        ("ab", "base64", "Token YWI="),
        ("abc", "base64", "Token YWJj"),
        ("ä", "base64", "Token w6Q="),  # UTF-8 bytes, not Latin-1
        (
            "4cb1b3d2-6c47-4b5f-9a1e-7c1c1e2f0a11",
            "plain",
            "Token 4cb1b3d2-6c47-4b5f-9a1e-7c1c1e2f0a11",
        ),
    ],
)
def test_authorization_value(token: str, encoding: str, expected: str) -> None:
    assert authorization_value(SecretStr(token), encoding) == expected  # type: ignore[arg-type]


@settings(max_examples=200, deadline=None)
@given(st.text(min_size=1, max_size=64))
def test_base64_round_trips_the_utf8_token(token: str) -> None:
    value = authorization_value(SecretStr(token), "base64")
    scheme, _, credentials = value.partition(" ")
    assert scheme == "Token"
    assert credentials.isascii()
    assert " " not in credentials
    assert base64.b64decode(credentials, validate=True) == token.encode("utf-8")


@settings(max_examples=200, deadline=None)
@given(st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=64))
def test_plain_is_the_token_after_exactly_one_space(token: str) -> None:
    assert authorization_value(SecretStr(token), "plain") == f"Token {token}"


# --- request IDs -----------------------------------------------------------------------------


@pytest.mark.parametrize("version", ["2.2.1", "2.3.0", "2.2", None])
def test_22_and_later_carry_request_and_correlation_ids(version: str | None) -> None:
    headers, request_id = headers_for(version, correlation_id="corr-42")
    assert headers["X-Request-ID"] == request_id
    assert headers["X-Correlation-ID"] == "corr-42"
    assert uuid.UUID(request_id).version == 4


def test_request_ids_are_unique_per_request_the_correlation_id_is_not() -> None:
    results = [headers_for("2.2.1") for _ in range(2000)]
    assert len({request_id for _, request_id in results}) == 2000
    assert {headers["X-Correlation-ID"] for headers, _ in results} == {"corr-1"}


@pytest.mark.parametrize("version", ["2.1.1", "2.1"])
@pytest.mark.parametrize("module_request", [True, False])
def test_211_has_no_ids_and_no_routing(version: str, module_request: bool) -> None:
    headers, request_id = headers_for(version, module_request=module_request, encoding="plain")
    assert headers == {"Authorization": "Token example-token"}
    assert request_id  # still returned, for our own logs


# --- routing headers -------------------------------------------------------------------------


def test_routing_headers_for_module_requests_upper_cased() -> None:
    routing = RoutingHeaders(
        from_country_code="nl", from_party_id="aBc", to_country_code="De", to_party_id="xyz"
    )
    headers, _ = headers_for("2.2.1", routing=routing)
    assert {name: headers[name] for name in ROUTING_NAMES} == {
        "OCPI-from-country-code": "NL",
        "OCPI-from-party-id": "ABC",
        "OCPI-to-country-code": "DE",
        "OCPI-to-party-id": "XYZ",
    }


@pytest.mark.parametrize(
    ("version", "routing", "module_request"),
    [
        ("2.2.1", ROUTING, False),  # versions / version details: never
        (None, ROUTING, False),
        ("2.2.1", None, True),  # not configured
        ("2.1.1", ROUTING, True),  # not in 2.1.1
        ("2.2.1", RoutingHeaders(), True),
        ("2.2.1", RoutingHeaders(from_country_code="", to_party_id=""), True),
    ],
)
def test_no_routing_headers(
    version: str | None, routing: RoutingHeaders | None, module_request: bool
) -> None:
    headers, _ = headers_for(version, routing=routing, module_request=module_request)
    assert not ROUTING_NAMES & set(headers)


def test_only_configured_routing_headers_are_sent() -> None:
    routing = RoutingHeaders(to_country_code="de", to_party_id="xyz")
    headers, _ = headers_for("2.2.1", routing=routing)
    assert {name: headers[name] for name in ROUTING_NAMES & set(headers)} == {
        "OCPI-to-country-code": "DE",
        "OCPI-to-party-id": "XYZ",
    }


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.none() | st.text("abcdefXYZ", max_size=3), min_size=4, max_size=4),
)
def test_as_headers_sends_exactly_the_non_empty_fields(values: list[str | None]) -> None:
    routing = RoutingHeaders(*values)
    names = [
        "OCPI-from-country-code",
        "OCPI-from-party-id",
        "OCPI-to-country-code",
        "OCPI-to-party-id",
    ]
    expected = {name: v.upper() for name, v in zip(names, values, strict=True) if v}
    assert routing.as_headers() == expected


# --- the token -------------------------------------------------------------------------------


@pytest.mark.parametrize("version", ["2.1.1", "2.2.1", None])
@pytest.mark.parametrize("encoding", ["base64", "plain"])
def test_token_appears_only_in_authorization(version: str | None, encoding: str) -> None:
    secret = "s3cr3t-T0KEN-value"
    headers, request_id = headers_for(version, token=SecretStr(secret), encoding=encoding)
    encoded = base64.b64encode(secret.encode()).decode()
    for name, value in headers.items():
        if name != "Authorization":
            assert secret not in value
            assert encoded not in value
    assert secret not in request_id
    assert headers["Authorization"].startswith("Token ")
