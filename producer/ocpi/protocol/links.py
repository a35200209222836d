"""`Link` header parsing (RFC 8288) and the safety check on where a next link may lead.

Pure functions: no I/O. Partners send links with several rels, parameters in any order, quoted or
bare values, commas inside quotes, relative targets and, sometimes, hostile targets. The token is
sent to whatever we fetch, so a next link is followed only to the module endpoint's own origin.
"""

from __future__ import annotations

from dataclasses import dataclass

from yarl import URL

from producer.errors import PartnerProtocolError, UnsafeLinkError

MAX_LINK_HEADER_CHARS = 16_384


@dataclass(frozen=True, slots=True)
class LinkValue:
    """One link of a `Link` header: its target (as written) and its parameters."""

    target: str
    params: tuple[tuple[str, str], ...]

    @property
    def rels(self) -> frozenset[str]:
        """The relation types (`rel` may hold several, space-separated, case-insensitive)."""
        for name, value in self.params:
            if name == "rel":
                return frozenset(value.lower().split())
        return frozenset()


def _skip_spaces(text: str, pos: int) -> int:
    while pos < len(text) and text[pos] in " \t":
        pos += 1
    return pos


def _parse_quoted(text: str, pos: int) -> tuple[str, int]:
    # pos is at the opening quote; backslash escapes the next character (RFC 7230 quoted-pair).
    out: list[str] = []
    pos += 1
    while pos < len(text):
        char = text[pos]
        if char == "\\" and pos + 1 < len(text):
            out.append(text[pos + 1])
            pos += 2
            continue
        if char == '"':
            return "".join(out), pos + 1
        out.append(char)
        pos += 1
    return "".join(out), pos  # unterminated: take what there is


def _parse_params(text: str, pos: int) -> tuple[list[tuple[str, str]], int]:
    params: list[tuple[str, str]] = []
    while True:
        pos = _skip_spaces(text, pos)
        if pos >= len(text) or text[pos] == ",":
            return params, pos
        if text[pos] != ";":
            # Junk between parameters: skip to the next separator rather than give up.
            while pos < len(text) and text[pos] not in ";,":
                pos += 1
            continue
        pos = _skip_spaces(text, pos + 1)
        start = pos
        while pos < len(text) and text[pos] not in "=;, \t":
            pos += 1
        name = text[start:pos].lower()
        pos = _skip_spaces(text, pos)
        value = ""
        if pos < len(text) and text[pos] == "=":
            pos = _skip_spaces(text, pos + 1)
            if pos < len(text) and text[pos] == '"':
                value, pos = _parse_quoted(text, pos)
            else:
                start = pos
                while pos < len(text) and text[pos] not in ";,":
                    pos += 1
                value = text[start:pos].strip()
        if name:
            params.append((name, value))


def parse_link_header(value: str) -> list[LinkValue]:
    """Every link in one `Link` header value; malformed parts are skipped, never fatal."""
    links: list[LinkValue] = []
    text = value[:MAX_LINK_HEADER_CHARS]
    pos = 0
    while pos < len(text):
        pos = _skip_spaces(text, pos)
        if pos >= len(text):
            break
        if text[pos] == ",":
            pos += 1
            continue
        if text[pos] != "<":
            # Not a link-value: skip to the next comma outside quotes.
            in_quotes = False
            while pos < len(text) and (in_quotes or text[pos] != ","):
                if text[pos] == '"':
                    in_quotes = not in_quotes
                pos += 1
            continue
        end = text.find(">", pos + 1)
        if end < 0:
            break
        target = text[pos + 1 : end].strip()
        params, pos = _parse_params(text, end + 1)
        links.append(LinkValue(target, tuple(params)))
    return links


def find_next_target(header_values: list[str]) -> str | None:
    """The target of the first `rel="next"` link among all `Link` headers, if any.

    An empty header or an empty target (`Link: <>; rel="next"`) means there is no next page. A
    header too long to parse whole is refused rather than read as "no next page": a cut-off
    header must not end a pull early.
    """
    for header in header_values:
        if len(header) > MAX_LINK_HEADER_CHARS:
            raise PartnerProtocolError(
                f"partner sent a Link header of {len(header)} characters "
                f"(more than {MAX_LINK_HEADER_CHARS}); refusing to guess the next page"
            )
        for link in parse_link_header(header):
            if "next" in link.rels and link.target:
                return link.target
    return None


@dataclass(frozen=True, slots=True)
class NextLink:
    """The next page's link target as written, and whether it came without a `rel`."""

    target: str
    without_rel: bool = False


def find_next_link(header_values: list[str]) -> NextLink | None:
    """The next link: the first `rel="next"`, else a lone link with no `rel` at all.

    Some partners (and the old PullClient's own tests) send `Link: <url>`: one URI reference and
    no relation. Taken as next, flagged so the summary can say so; several rel-less links are
    ambiguous and taken as none. An empty `Link:` header means there is no next page.
    """
    target = find_next_target(header_values)
    if target is not None:
        return NextLink(target)
    links = [link for header in header_values for link in parse_link_header(header)]
    if len(links) == 1 and links[0].target and not any(n == "rel" for n, _ in links[0].params):
        return NextLink(links[0].target, without_rel=True)
    return None


def origin_of(url: URL) -> tuple[str, str, int | None]:
    """(scheme, host, port) with the scheme's default port filled in."""
    return (url.scheme.lower(), (url.raw_host or "").lower(), url.port)


def resolve_next_link(request_url: URL, target: str, endpoint: URL) -> URL:
    """The absolute URL a next link points to, or UnsafeLinkError if following it is unsafe.

    A relative target is resolved against the URL it came with. The result must use http(s),
    carry no user info and have exactly the module endpoint's origin: the credentials token is sent
    with every request, so it may only go where the partner told us its module lives.
    """
    if any(ch == "\\" or ch < " " or ch == "\x7f" for ch in target):
        raise UnsafeLinkError("next link refused: it contains control or backslash characters")
    try:
        resolved = request_url.join(URL(target))
    except (ValueError, IndexError):  # (yarl 1.x reads `0://[]@` past its end)
        raise UnsafeLinkError("next link refused: it is not a valid URL") from None
    if resolved.scheme.lower() not in ("http", "https"):
        raise UnsafeLinkError(f"next link refused: scheme {resolved.scheme!r} is not http(s)")
    if resolved.raw_user is not None or resolved.raw_password is not None:
        raise UnsafeLinkError("next link refused: it carries user info")
    if origin_of(resolved) != origin_of(endpoint):
        found = f"{resolved.scheme}://{resolved.raw_host}:{resolved.port}"
        expected = f"{endpoint.scheme}://{endpoint.raw_host}:{endpoint.port}"
        raise UnsafeLinkError(
            f"next link refused: it leads to {found}, not to the endpoint's origin {expected}"
        )
    return resolved.with_fragment(None)


def plain_offset_of(next_url: URL, window_url: URL) -> int | None:
    """The `offset` of a next link that is a plain offset URL on the window's own endpoint.

    Plain means: same origin and path as the window's first request, an integer `offset`, and
    every other query parameter (the filters) unchanged except `limit`. Only then may we compute
    further page URLs ourselves (fan-out, step back); an opaque hub link returns None.
    """
    if (next_url.scheme, next_url.host, next_url.port, next_url.path.rstrip("/")) != (
        window_url.scheme,
        window_url.host,
        window_url.port,
        window_url.path.rstrip("/"),
    ):
        return None
    raw = next_url.query.get("offset")
    if raw is None or not raw.isdigit():
        return None

    def filters(url: URL) -> list[tuple[str, str]]:
        return sorted((k, v) for k, v in url.query.items() if k not in ("offset", "limit"))

    if filters(next_url) != filters(window_url):
        return None
    return int(raw)
