"""The OCPI response envelope and the pagination headers, parsed defensively. Pure functions.

The body decides, not the Content-Type: a valid OCPI envelope is accepted whatever the header says
(partners mislabel JSON), and anything that is not one (HTML error pages, truncated or non-UTF-8
bytes, nesting beyond the parser's limit, a `data` that is not a list) is a `PartnerProtocolError`.

A list page is read once into each object's JSON text (`parse_list_envelope`): the objects are
not parsed here, the page reader (`producer.ocpi.paging.reader`) decodes them.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import msgspec
import numpy as np
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
    items: list[Any]  # a list page's objects, each its JSON text (`parse_list_envelope`)
    data_value: Any = None  # `data` as sent, for endpoints that return an object
    # A list page's whole JSON text (compact), whose `data` the items are slices of: the page
    # reader decodes it in one go (b"" when the page was not read that way).
    text: bytes = b""

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


class _ListPage(msgspec.Struct):
    """A list page's envelope, its objects left as their JSON text."""

    status_code: Any = None
    status_message: Any = None
    timestamp: Any = None
    data: list[msgspec.Raw] | None = None


_decode_list_page = msgspec.json.Decoder(_ListPage).decode


# JSON's structural characters, by byte value.
_STRUCTURAL = np.zeros(256, dtype=bool)
_STRUCTURAL[list(b"{}[],:")] = True


def is_compact(body: bytes) -> bool:
    """Whether JSON text has no whitespace outside its strings: a raw tab, CR or LF is never
    inside a string, and a space outside one always touches a structural character (two values
    are never adjacent) or an end of the text. (A space in a string that touches one, as in
    "a, b", makes it answer False: the text is then compacted for nothing, which is harmless.)"""
    if b"\n" in body or b"\r" in body or b"\t" in body:
        return False
    chars = np.frombuffer(body, dtype=np.uint8)
    spaces = np.flatnonzero(chars == ord(" "))
    if not len(spaces):
        return True
    if spaces[0] == 0 or spaces[-1] == len(chars) - 1:
        return False
    return not (_STRUCTURAL[chars[spaces - 1]].any() or _STRUCTURAL[chars[spaces + 1]].any())


def parse_list_envelope(body: bytes) -> Envelope:
    """Parse a list page into an Envelope whose `items` are each object's JSON text, compact
    (a pretty-printed page is compacted first), or raise PartnerProtocolError.

    Accepts and refuses what `parse_envelope` does: the objects' text is checked as JSON and
    UTF-8 here, their content by the page reader. (One difference: a number beyond the double
    range inside an object is kept as sent, where a parser into floats refuses the whole page.)
    """
    if not body.isascii():
        try:
            body.decode()
        except UnicodeDecodeError:
            return _parsed_whole(body)  # raises what the JSON parser says about it
    try:
        if not is_compact(body):
            body = msgspec.json.format(body, indent=-1)
        page = _decode_list_page(body)
    except (msgspec.ValidationError, msgspec.DecodeError, RecursionError):
        return _parsed_whole(body)  # an error, said as before, or an odd but valid envelope
    status_code = page.status_code
    if isinstance(status_code, bool) or not isinstance(status_code, int):
        raise PartnerProtocolError("partner sent an envelope without an integer status_code")
    message, timestamp = page.status_message, page.timestamp
    return Envelope(
        status_code=status_code,
        status_message=message if isinstance(message, str) else None,
        timestamp=timestamp if isinstance(timestamp, str) else None,
        items=[] if page.data is None else list(map(bytes, page.data)),
        text=body,
    )


def _parsed_whole(body: bytes) -> Envelope:
    envelope = parse_envelope(body)
    return replace(envelope, items=[orjson.dumps(item) for item in envelope.items])


def parse_details_envelope(body: bytes) -> Envelope:
    """`parse_envelope` of an endpoint that returns an object (versions, version details)."""
    return parse_envelope(body, list_data=False)


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
