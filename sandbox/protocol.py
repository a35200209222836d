"""The OCPI wire basics the sandbox partner speaks: clock, envelope, errors, auth, DateTimes."""

from __future__ import annotations

import base64
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Final

import orjson
from aiohttp import web

from sandbox.generator import Party, format_datetime

TRACE_HEADERS: Final = ("X-Request-ID", "X-Correlation-ID")
ROUTING_HEADERS: Final = (
    "OCPI-from-country-code",
    "OCPI-from-party-id",
    "OCPI-to-country-code",
    "OCPI-to-party-id",
)
ROLE_OF_MODULE: Final[dict[str, str]] = {
    "tokens": "emsp",
    "locations": "cpo",
    "tariffs": "cpo",
    "sessions": "cpo",
    "cdrs": "cpo",
}


def now_ms() -> int:
    """Wall-clock epoch milliseconds (the partner's clock)."""
    return time.time_ns() // 1_000_000


def parse_ocpi_datetime(value: str) -> int:
    """Epoch ms of an OCPI DateTime query value; no zone means UTC (2.2.1 types).

    Accepts `T` or a space between date and time (Python's `str(datetime)`, as py-ocpi writes
    its links), and a `+hh:mm` offset whose `+` arrived as a space because the client did not
    URL-encode it (P4).
    """
    text = value.strip()
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        head, space, tail = text.rpartition(" ")
        if not space:
            raise
        parsed = datetime.fromisoformat(f"{head}+{tail}")
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return int(parsed.timestamp() * 1000)


class OcpiFailure(Exception):
    """An OCPI error answer: HTTP status plus the OCPI status code and message."""

    def __init__(self, http_status: int, status_code: int, message: str) -> None:
        super().__init__(message)
        self.http_status = http_status
        self.status_code = status_code
        self.message = message


class PlainFailure(Exception):
    """An error answer that is not an OCPI envelope (a framework's own body), e.g. FastAPI's 422."""

    def __init__(self, http_status: int, body: Any) -> None:
        super().__init__(f"HTTP {http_status}")
        self.http_status = http_status
        self.body = body


def fastapi_invalid_query(name: str, value: str) -> PlainFailure:
    """The 422 FastAPI (pydantic v1) answers for a query parameter that is not a datetime."""
    return PlainFailure(
        422,
        {
            "detail": [
                {
                    "loc": ["query", name],
                    "msg": "invalid datetime format",
                    "type": "value_error.datetime",
                    "input": value,
                }
            ]
        },
    )


def envelope(
    data: Any, status_code: int = 1000, message: str = "Success", timestamp: str | None = None
) -> bytes:
    """An OCPI response body; `timestamp` defaults to now in the spec's format."""
    return orjson.dumps(
        {
            "data": data,
            "status_code": status_code,
            "status_message": message,
            "timestamp": format_datetime(now_ms()) if timestamp is None else timestamp,
        }
    )


def json_response(
    body: bytes, status: int = 200, headers: dict[str, str] | None = None
) -> web.Response:
    """A JSON response with the given pre-serialised body."""
    return web.Response(body=body, status=status, content_type="application/json", headers=headers)


def echo_ids(request: web.Request) -> dict[str, str]:
    """`X-Request-ID` and `X-Correlation-ID` of the request, to be sent back (2.2+)."""
    headers: dict[str, str] = {}
    for name in ("X-Request-ID", "X-Correlation-ID"):
        value = request.headers.get(name)
        if value is not None:
            headers[name] = value
    return headers


def check_authorization(header: str, token: str, encoding: str, version: str | None) -> None:
    """Raise 401 unless `header` is `Token <token>` in the form `encoding` asks for `version`.

    "version" follows each spec: plain in 2.1.1, Base64 in 2.2.1 and 2.3.0 (exactly one space
    after `Token`); before a version is chosen (the versions endpoint) both forms are accepted.
    """
    if not header.startswith("Token "):
        raise OcpiFailure(401, 2000, "Missing or malformed Authorization header")
    presented = header[len("Token ") :]
    encoded = base64.b64encode(token.encode()).decode()
    mode = encoding
    if mode == "version":
        mode = "any" if version is None else ("plain" if version == "2.1.1" else "base64")
    accepted = {"plain": (token,), "base64": (encoded,), "any": (token, encoded)}[mode]
    if presented not in accepted:
        raise OcpiFailure(401, 2000, "Unknown or wrongly encoded credentials token")


def check_request_headers(
    headers: Mapping[str, str], version: str | None, party: Party, *, functional: bool
) -> None:
    """Raise 400 (OCPI 2001) for the first 2.2+ header rule the request breaks.

    2.2.1 and 2.3.0 (transport_and_format): every request carries `X-Request-ID` and
    `X-Correlation-ID`; requests to functional modules carry all four `OCPI-from-*`/`OCPI-to-*`
    routing headers, `OCPI-to-*` naming this party (CiStrings: case-insensitive); versions and
    version details SHALL NOT carry routing headers. 2.1.1 has none of these headers. `version`
    None is the versions list, which belongs to no version.
    """
    if version == "2.1.1":
        return
    if version is not None:
        for name in TRACE_HEADERS:
            if not headers.get(name):
                raise OcpiFailure(400, 2001, f"Missing {name} header (required in OCPI {version})")
    if not functional:
        for name in ROUTING_HEADERS:
            if name in headers:
                raise OcpiFailure(400, 2001, f"{name} SHALL NOT be sent to versions endpoints")
        return
    for name in ROUTING_HEADERS:
        if not headers.get(name):
            raise OcpiFailure(400, 2001, f"Missing {name} header (required in OCPI {version})")
    for name, own in (
        ("OCPI-to-country-code", party.country_code),
        ("OCPI-to-party-id", party.party_id),
    ):
        if headers[name].upper() != own.upper():
            raise OcpiFailure(400, 2001, f"{name} {headers[name]!r} is not this party ({own})")
