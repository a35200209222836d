"""The OCPI response envelope and the pagination headers, parsed defensively. Pure functions.

The body decides, not the Content-Type: a valid OCPI envelope is accepted whatever the header says
(partners mislabel JSON), and anything that is not one (HTML error pages, truncated or non-UTF-8
bytes, nesting beyond the parser's limit, a `data` that is not a list) is a `PartnerProtocolError`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from producer.errors import PartnerProtocolError

# Larger than any real partner's total, small enough to never overflow arithmetic downstream.
MAX_COUNT_HEADER = 10**12


@dataclass(frozen=True, slots=True)
class Envelope:
    """A parsed OCPI response: status and the list items of `data` (not yet validated)."""

    status_code: int
    status_message: str | None
    timestamp: str | None
    items: list[Any]
    data_value: Any = None  # `data` as sent, for endpoints that return an object

    @property
    def is_success(self) -> bool:
        """OCPI 1xxx means success (1000 generic, 19xx custom)."""
        return 1000 <= self.status_code <= 1999


def _describe(body: bytes) -> str:
    head = body[:40].decode("utf-8", "replace").replace("\n", " ")
    return f"{len(body)} bytes starting {head!r}"


def parse_envelope(body: bytes, *, list_data: bool = True) -> Envelope:
    """Parse a response body into an Envelope, or raise PartnerProtocolError.

    With `list_data` (list endpoints) `data` must be a list (or absent); otherwise it is kept
    as sent in `data_value` (versions and version details).
    """
    if not body.strip():
        raise PartnerProtocolError("partner sent an empty body instead of an OCPI envelope")
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError as error:
        raise PartnerProtocolError(
            f"partner sent a body that is not JSON ({error.msg}; {_describe(body)})"
        ) from None
    if not isinstance(document, dict):
        raise PartnerProtocolError(
            f"partner sent JSON that is not an OCPI envelope (a {type(document).__name__})"
        )
    status_code = document.get("status_code")
    if isinstance(status_code, bool) or not isinstance(status_code, int):
        raise PartnerProtocolError("partner sent an envelope without an integer status_code")
    message = document.get("status_message")
    timestamp = document.get("timestamp")
    data = document.get("data")
    if not list_data:
        items: list[Any] = []
    elif data is None:
        items = []  # 2.3.0 / 2.2.1-d2: accept a missing data where none is defined
    elif isinstance(data, list):
        items = data
    elif 1000 <= status_code <= 1999:
        raise PartnerProtocolError(
            f"partner sent a `data` {type(data).__name__} where a list endpoint returns a list"
        )
    else:
        items = []
    return Envelope(
        status_code=status_code,
        status_message=message if isinstance(message, str) else None,
        timestamp=timestamp if isinstance(timestamp, str) else None,
        items=items,
        data_value=data,
    )


def parse_count_header(value: str | None) -> int | None:
    """`X-Total-Count` / `X-Limit` as a non-negative int; None when absent or not a sane number.

    Negative, huge, fractional or garbage values are ignored (treated as not sent) rather than
    trusted: they only ever steer planning and checks, never which pages exist.
    """
    if value is None:
        return None
    text = value.strip()
    # isdigit() alone admits '²' (int() rejects it) and other scripts' digits: ASCII only.
    if not (text.isascii() and text.isdigit()) or len(text) > 13:
        return None
    number = int(text)
    return number if number <= MAX_COUNT_HEADER else None
