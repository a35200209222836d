"""`Link` header parsing and next-link safety (ocpi/protocol/links.py): tables, properties, fuzz.

The parser must read what real partners send (RFC 8288 in all its spellings) and survive what
hostile or broken ones send; the resolver must never let the credentials token leave the module
endpoint's origin, whatever spelling of another host, scheme or port a next link uses.
"""

from __future__ import annotations

import time
import urllib.parse

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from yarl import URL

from producer.errors import PartnerProtocolError, UnsafeLinkError
from producer.ocpi.protocol.links import (
    MAX_LINK_HEADER_CHARS,
    LinkValue,
    find_next_target,
    origin_of,
    parse_link_header,
    resolve_next_link,
)

ENDPOINT = URL("https://partner.example.com/ocpi/cpo/2.2.1/locations")
REQUEST = URL("https://partner.example.com/ocpi/cpo/2.2.1/locations?offset=50&limit=50")
IP_ENDPOINT = URL("http://127.0.0.1:8080/ocpi/cpo/2.2.1/locations")
V6_ENDPOINT = URL("http://[::1]:8080/ocpi/cpo/2.2.1/locations")


def targets_and_rels(header: str) -> list[tuple[str, set[str]]]:
    return [(link.target, set(link.rels)) for link in parse_link_header(header)]


# --- parse_link_header: tables -------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        # The spec's own example.
        (
            '<https://www.server.com/ocpi/cpo/2.2.1/cdrs/?offset=150&limit=50>; rel="next"',
            [("https://www.server.com/ocpi/cpo/2.2.1/cdrs/?offset=150&limit=50", {"next"})],
        ),
        ("<a>; rel=next", [("a", {"next"})]),
        ("<a>;rel=next", [("a", {"next"})]),
        ('<a>;rel="NEXT"', [("a", {"next"})]),
        ("<a>; REL=Next", [("a", {"next"})]),
        ('<a> ; rel = "next"', [("a", {"next"})]),
        ('<a>\t;\trel="next"\t', [("a", {"next"})]),
        ('< a >; rel="next"', [("a", {"next"})]),
        # Several rels in one link.
        ('<a>; rel="next last"', [("a", {"next", "last"})]),
        ('<a>; rel="  next\tlast  "', [("a", {"next", "last"})]),
        ('<a>; rel="next-page next"', [("a", {"next-page", "next"})]),
        # Several links, in any order.
        ('<a>; rel="last", <b>; rel="next"', [("a", {"last"}), ("b", {"next"})]),
        ('<b>; rel="next",<a>; rel="prev"', [("b", {"next"}), ("a", {"prev"})]),
        (" , , <a>; rel=next ,", [("a", {"next"})]),
        # Parameters in any order, rel not first.
        ('<a>; title="Next page"; rel="next"', [("a", {"next"})]),
        ('<a>; type="application/json"; rel=next; title=x', [("a", {"next"})]),
        # Commas and semicolons inside quotes do not split.
        ('<a>; title="x, y; z"; rel="next"', [("a", {"next"})]),
        ('<a>; title="x, <b>; rel=next"; rel="last"', [("a", {"last"})]),
        # ... nor inside <...>.
        ('<https://p/x?a=1,2;3>; rel="next"', [("https://p/x?a=1,2;3", {"next"})]),
        ('<a,b>; rel="next", <c;d>; rel=last', [("a,b", {"next"}), ("c;d", {"last"})]),
        # Escapes in quoted values.
        ('<a>; rel="pre\\"v" , <b>; rel=next', [("a", {'pre"v'}), ("b", {"next"})]),
        ('<a>; rel="\\n\\e\\x\\t"', [("a", {"next"})]),
        # RFC 8288 3.3: occurrences of rel after the first are ignored.
        ("<a>; rel=next; rel=prev", [("a", {"next"})]),
        ("<a>; rel=prev; rel=next", [("a", {"prev"})]),
        # No rel, or an empty one.
        ("<a>", [("a", set())]),
        ("<a>; title=x", [("a", set())]),
        ("<a>; rel", [("a", set())]),
        ("<a>; rel=", [("a", set())]),
        ('<a>; rel=""', [("a", set())]),
        # An empty target is kept as written (the caller decides what it means).
        ('<>; rel="next"', [("", {"next"})]),
        # Single quotes are not quotes in HTTP.
        ("<a>; rel='next'", [("a", {"'next'"})]),
        # Extended parameters (RFC 8187) do not disturb rel.
        ("<a>; title*=UTF-8'de'n%c3%a4chstes; rel=next", [("a", {"next"})]),
        # An anchor holding <...> does not start a new link.
        ('<a>; anchor="<b>"; rel=next', [("a", {"next"})]),
        # Junk between parameters is skipped, the rest still read.
        ("<a> junk ; rel=next", [("a", {"next"})]),
        ("<a>; junk; rel=next", [("a", {"next"})]),
        # Unterminated quote: take what there is.
        ('<a>; rel="next', [("a", {"next"})]),
    ],
)
def test_parse_link_header_table(header: str, expected: list[tuple[str, set[str]]]) -> None:
    assert targets_and_rels(header) == expected


@pytest.mark.parametrize(
    "header",
    [
        "",
        "   ",
        "\t",
        ",",
        ",,,",
        "garbage",
        "rel=next",
        "a>; rel=next",
        "<a",
        "<https://partner/x?offset=50; rel=next",
        '"<x>, <y>"; rel=next',
        "; rel=next",
        '"unterminated <x>; rel=next',
    ],
)
def test_parse_link_header_garbage_gives_no_links(header: str) -> None:
    assert parse_link_header(header) == []


def test_junk_before_a_link_is_skipped_up_to_the_next_comma() -> None:
    header = 'junk <evil>; rel=next, "<x>, <y>"; rel=next, <z>; rel=next'
    assert targets_and_rels(header) == [("z", {"next"})]


def test_parameters_keep_their_order_and_lowercased_names() -> None:
    (link,) = parse_link_header('<a>; Title="A; b"; REL=next; Type=text/html')
    assert link.params == (("title", "A; b"), ("rel", "next"), ("type", "text/html"))
    assert link.rels == frozenset({"next"})


def test_link_value_is_frozen() -> None:
    link = LinkValue("a", (("rel", "next"),))
    with pytest.raises(AttributeError):
        link.target = "b"  # type: ignore[misc]


def test_an_over_long_header_is_refused_not_read_as_the_last_page() -> None:
    filler = "<https://p/filler>; rel=other, " * (MAX_LINK_HEADER_CHARS // 30 + 10)
    header = filler + "<https://p/late>; rel=next"
    assert len(header) > MAX_LINK_HEADER_CHARS
    with pytest.raises(PartnerProtocolError, match="Link header of"):
        find_next_target([header])
    # The parser itself stays bounded: it reads only the first MAX_LINK_HEADER_CHARS.
    assert all(link.target == "https://p/filler" for link in parse_link_header(header))


@pytest.mark.parametrize(
    "header",
    [
        "<" * 1_000_000,
        ">" * 1_000_000,
        '"' * 1_000_000,
        ";" * 1_000_000,
        "," * 1_000_000,
        "\\" * 1_000_000,
        "<a>" + "; x=y" * 300_000,
        '<a>; title="' + "\\" * 1_000_000,
        "<a>; rel=next, " * 100_000,
        "x" * 5_000_000,
    ],
)
def test_huge_headers_take_bounded_time(header: str) -> None:
    # A hang guard, not a speed target: the bound is generous for a busy machine.
    started = time.perf_counter()
    parse_link_header(header)
    with pytest.raises(PartnerProtocolError):
        find_next_target([header, header])
    assert time.perf_counter() - started < 10.0


# --- find_next_target ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ([], None),
        ([""], None),
        (["garbage"], None),
        (['<a>; rel="last"'], None),
        (['<a>; rel="nextpage"'], None),
        (['<>; rel="next"'], None),
        (['< >; rel="next"'], None),
        (['<a>; rel="next"'], "a"),
        (['<a>; rel="next last"'], "a"),
        (['<a>; rel="last", <b>; rel="next"'], "b"),
        (['<a>; rel="next", <b>; rel="next"'], "a"),
        # An empty next target does not hide a later real one.
        (['<>; rel="next", <b>; rel="next"'], "b"),
        # Several Link headers: the first next link wins.
        (['<a>; rel="last"', '<b>; rel="next"'], "b"),
        (['<a>; rel="next"', '<b>; rel="next"'], "a"),
        (["", "garbage", '<c>; rel="NEXT"'], "c"),
    ],
)
def test_find_next_target_table(headers: list[str], expected: str | None) -> None:
    assert find_next_target(headers) == expected


# --- parse_link_header: properties ---------------------------------------------------------

TOKEN_CHARS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789!#$%&'*+-.^_`|~"
TARGET_CHARS = TOKEN_CHARS + ':/?=@;,"()[] <\\'
VALUE_CHARS = TOKEN_CHARS + ' ;,=<>"\\/:\t()é'
RELS = ["next", "last", "prev", "first", "self", "NEXT", "Last", "next-page"]

spaces = st.sampled_from(["", " ", "  ", "\t", " \t"])
targets = st.text(TARGET_CHARS, max_size=40).map(str.strip)
param_names = st.text(TOKEN_CHARS.replace("*", ""), min_size=1, max_size=8).filter(
    lambda name: name.lower() != "rel"
)


def quoted(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


@st.composite
def rendered_links(draw: st.DrawFn) -> tuple[str, list[tuple[str, tuple[tuple[str, str], ...]]]]:
    """A Link header written in one of many legal ways, and what it must parse to."""
    links = []
    parts = []
    for _ in range(draw(st.integers(0, 4))):
        target = draw(targets)
        params: list[tuple[str, str]] = []
        written: list[str] = []
        for name in draw(st.lists(param_names, max_size=3)):
            value = draw(st.text(VALUE_CHARS, max_size=12))
            bare = value and all(ch in TOKEN_CHARS for ch in value)
            text = value if bare and draw(st.booleans()) else quoted(value)
            params.append((name.lower(), value))
            written.append(f"{name}{draw(spaces)}={draw(spaces)}{text}")
        if draw(st.booleans()):
            rels = draw(st.lists(st.sampled_from(RELS), min_size=1, max_size=3))
            value = " ".join(rels)
            text = value if len(rels) == 1 and draw(st.booleans()) else quoted(value)
            position = draw(st.integers(0, len(params)))
            params.insert(position, ("rel", value))
            written.insert(position, f"{draw(st.sampled_from(['rel', 'REL', 'Rel']))}={text}")
        sep = [f"{draw(spaces)};{draw(spaces)}" for _ in written]
        parts.append(f"<{target}>" + "".join(s + w for s, w in zip(sep, written, strict=True)))
        links.append((target, tuple(params)))
    separator = draw(st.sampled_from([",", ", ", " ,", " , ", ",\t"]))
    return separator.join(parts), links


@settings(max_examples=100, deadline=None)
@given(rendered_links())
def test_round_trip_of_legal_headers(case: tuple[str, list]) -> None:
    header, expected = case
    parsed = parse_link_header(header)
    assert [(link.target, link.params) for link in parsed] == expected
    for link, (_, params) in zip(parsed, expected, strict=True):
        rel = next((value for name, value in params if name == "rel"), "")
        assert link.rels == frozenset(rel.lower().split())


@settings(max_examples=100, deadline=None)
@given(rendered_links())
def test_find_next_target_is_the_first_nonempty_next(case: tuple[str, list]) -> None:
    header, _ = case
    nexts = [link.target for link in parse_link_header(header) if "next" in link.rels]
    assert find_next_target([header]) == next((t for t in nexts if t), None)
    assert find_next_target(["", "garbage", header]) == find_next_target([header])


header_soup = st.lists(
    st.sampled_from(["<", ">", '"', "\\", ";", ",", "=", " ", "\t", "rel", "next", "a", "é"]),
    max_size=60,
).map("".join)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200) | header_soup)
def test_garbage_never_raises(header: str) -> None:
    links = parse_link_header(header)
    for link in links:
        assert ">" not in link.target
        assert link.target == link.target.strip(" \t")
        assert all(name == name.lower() and name for name, _ in link.params)
    target = find_next_target([header])
    assert target is None or target in {link.target for link in links}


# --- resolve_next_link: what is followed ----------------------------------------------------


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        (
            "https://partner.example.com/ocpi/cpo/2.2.1/locations?offset=100&limit=50",
            "https://partner.example.com/ocpi/cpo/2.2.1/locations?offset=100&limit=50",
        ),
        # Relative forms resolve against the URL of the request that returned the link.
        ("?offset=100", "https://partner.example.com/ocpi/cpo/2.2.1/locations?offset=100"),
        ("locations?offset=100", "https://partner.example.com/ocpi/cpo/2.2.1/locations?offset=100"),
        ("/ocpi/page/7", "https://partner.example.com/ocpi/page/7"),
        ("../2.2.1/locations?x=1", "https://partner.example.com/ocpi/cpo/2.2.1/locations?x=1"),
        ("//partner.example.com/p?o=1", "https://partner.example.com/p?o=1"),
        # Case, default port, empty port: the same origin.
        ("HTTPS://PARTNER.EXAMPLE.COM/p", "https://partner.example.com/p"),
        ("https://Partner.Example.Com:443/p", "https://partner.example.com/p"),
        ("https://partner.example.com:/p", "https://partner.example.com/p"),
        # A fragment is never sent.
        ("https://partner.example.com/p?o=1#frag", "https://partner.example.com/p?o=1"),
        # Same-scheme "https:path" is relative (RFC 3986 5.2.2 non-strict); it stays home.
        ("https:page?o=1", "https://partner.example.com/ocpi/cpo/2.2.1/page?o=1"),
        # Three slashes are a path on yarl's reading, and yarl is what sends the request.
        ("///evil.com/x", "https://partner.example.com/evil.com/x"),
    ],
)
def test_followed_links(target: str, expected: str) -> None:
    assert str(resolve_next_link(REQUEST, target, ENDPOINT)) == expected


def test_relative_link_resolves_against_the_request_not_the_endpoint() -> None:
    request = URL("https://partner.example.com/ocpi/page/abc?cursor=1")
    resolved = resolve_next_link(request, "def?cursor=2", ENDPOINT)
    assert str(resolved) == "https://partner.example.com/ocpi/page/def?cursor=2"


def test_ipv6_endpoint_accepts_other_spellings_of_the_same_address() -> None:
    for target in (
        "http://[::1]:8080/x",
        "http://[0:0:0:0:0:0:0:1]:8080/x",
        "http://[::0:1]:8080/x",
    ):
        assert origin_of(resolve_next_link(V6_ENDPOINT, target, V6_ENDPOINT)) == (
            "http",
            "::1",
            8080,
        )


def test_idn_endpoint_matches_its_punycode() -> None:
    endpoint = URL("https://pärtner.example.com/ocpi")
    for target in ("https://pärtner.example.com/x", "https://xn--prtner-bua.example.com/x"):
        assert origin_of(resolve_next_link(endpoint, target, endpoint)) == origin_of(endpoint)


# --- resolve_next_link: what is refused -----------------------------------------------------

REFUSED = [
    # Other schemes.
    "file:///etc/passwd",
    "file://partner.example.com/etc/passwd",
    "ftp://partner.example.com/ocpi",
    "gopher://partner.example.com/",
    "javascript:alert(1)",
    "data:text/html,hi",
    "mailto:ops@partner.example.com",
    "ws://partner.example.com/ocpi",
    # http -> https and https -> http are scheme changes (and port changes).
    "http://partner.example.com/ocpi/cpo/2.2.1/locations?offset=100",
    "http:page",
    # Other hosts.
    "https://evil.com/ocpi",
    "//evil.com/x",
    "https://partner.example.com.evil.com/",
    "https://evil.com#@partner.example.com/",
    "https://evil.com?@partner.example.com",
    "https://evil.com/partner.example.com",
    "https://sub.partner.example.com/",
    "https://example.com/",
    # User info, including tricks that make the real host look like user info.
    "https://user@partner.example.com/",
    "https://user:pw@partner.example.com/",
    "https://:pw@partner.example.com/",
    "https://partner.example.com@evil.com/",
    "https://partner.example.com:443@evil.com/",
    "https://partner.example.com%2f@evil.com/",
    "http://host@evil/",
    # Backslashes: WHATWG parsers read them as slashes.
    "http:\\\\evil",
    "https:/\\evil.com",
    "https:\\\\partner.example.com\\x",
    "https://evil.com\\@partner.example.com",
    "https://partner.example.com\\.evil.com/",
    "/\\evil.com/x",
    # Control characters, anywhere.
    "https://partner.example.com/\r\nX-Injected: 1",
    "https://partner.example.com/\nx",
    "https://partner.example.com/\tx",
    "https://partner.example.com/\x00x",
    "https://partner.example.com\x00.evil.com/",
    "https://partner.example.com/a\x01b",
    "https://partner.example.com/a\x0bb",
    "https://partner.example.com/a\x1bb",
    "https://partner.example.com/a\x7fb",
    "https://partner.example.com\x01/a",
    "\x00",
    # Port changes.
    "https://partner.example.com:8443/",
    "https://partner.example.com:80/",
    "https://partner.example.com:0/",
    "https://partner.example.com:99999/",
    "https://partner.example.com:443x/",
    "https://partner.example.com:443:443/",
    # Hosts spelt differently: trailing dot, percent-encoding, look-alikes, full-width dots.
    "https://partner.example.com./",
    "https://partner%2eexample.com/",
    "https://%70artner.example.com/",
    "https://partner.example.com%00.evil.com/",
    "https://pаrtner.example.com/",  # Cyrillic а
    "https://partner.example.com\u3002evil.com/",
    "https://partner.example.com\uff0fevil",
    "https://partner.example.com /",
    "http://a b/",
    # Not URLs at all.
    "https://[::1/",
    "https://[zz]/",
]


@pytest.mark.parametrize("target", REFUSED)
def test_refused_links(target: str) -> None:
    with pytest.raises(UnsafeLinkError):
        resolve_next_link(REQUEST, target, ENDPOINT)


@pytest.mark.parametrize(
    "target",
    [
        "http://2130706433:8080/x",  # decimal
        "http://0x7f000001:8080/x",  # hexadecimal
        "http://0x7f.1:8080/x",  # mixed, shortened
        "http://0177.0.0.1:8080/x",  # octal
        "http://127.1:8080/x",  # shortened
        "http://127.000.000.001:8080/x",  # zero-padded
        "http://127.0.0.1.:8080/x",  # trailing dot
        "http://[::ffff:127.0.0.1]:8080/x",  # IPv4-mapped IPv6
        "http://[::ffff:7f00:1]:8080/x",
        "http://[::1]:8080/x",
        "http://%31%32%37.0.0.1:8080/x",  # percent-encoded
        "http://127.0.0.1%2e:8080/x",
        "http://localhost:8080/x",
        "http://127.0.0.2:8080/x",
        "http://127.0.0.1:80/x",
        "http://127.0.0.1/x",
        "https://127.0.0.1:8080/x",
        "http://user@127.0.0.1:8080/x",
        "http://127.0.0.1:8080@evil/x",
    ],
)
def test_ip_literal_variants_are_refused(target: str) -> None:
    with pytest.raises(UnsafeLinkError):
        resolve_next_link(IP_ENDPOINT, target, IP_ENDPOINT)


def test_ip_endpoint_follows_its_own_exact_spelling() -> None:
    resolved = resolve_next_link(IP_ENDPOINT, "http://127.0.0.1:8080/x?o=1", IP_ENDPOINT)
    assert str(resolved) == "http://127.0.0.1:8080/x?o=1"


@pytest.mark.parametrize(
    ("target", "scope"),
    [
        ("https://partner.example.com/x\x01", "control"),
        ("https://evil.com/x", "evil.com"),
        ("https://partner.example.com:8443/x", "8443"),
        ("ftp://partner.example.com/x", "'ftp'"),
        ("https://u@partner.example.com/x", "user info"),
    ],
)
def test_refusal_says_why_and_ends_the_pull_with_exit_5(target: str, scope: str) -> None:
    with pytest.raises(UnsafeLinkError) as caught:
        resolve_next_link(REQUEST, target, ENDPOINT)
    assert scope in str(caught.value)
    assert caught.value.exit_code == 5  # the pull ends incomplete, though not as a shortfall


def test_refusal_message_does_not_echo_user_info() -> None:
    with pytest.raises(UnsafeLinkError) as caught:
        resolve_next_link(REQUEST, "https://token:s3cr3t@partner.example.com/", ENDPOINT)
    assert "s3cr3t" not in str(caught.value)


# --- resolve_next_link: properties ----------------------------------------------------------

url_soup = st.lists(
    st.sampled_from(
        [
            *"htps:/\\@[]%.?#:;,<>\"' \t\x00\x01abcé。ü-_=&0x7f",
            "https://",
            "http://",
            "//",
            "partner.example.com",
            "PARTNER.example.com",
            "evil.com",
            "::ffff:",
            "xn--",
            "%2e",
            "%40",
            ":443",
            ":80",
            ":8443",
            "127.0.0.1",
            "2130706433",
        ]
    ),
    max_size=16,
).map("".join)


def assert_stays_home(resolved: URL, endpoint: URL) -> None:
    assert origin_of(resolved) == origin_of(endpoint)
    assert resolved.user is None
    assert resolved.password is None
    assert resolved.fragment == ""
    # Whoever parses the URL next (yarl again, or the standard library) sees the same origin.
    again = URL(str(resolved))
    assert origin_of(again) == origin_of(endpoint)
    split = urllib.parse.urlsplit(str(resolved))
    assert split.scheme == endpoint.scheme
    assert split.hostname == endpoint.raw_host
    assert (split.port or {"http": 80, "https": 443}[split.scheme]) == endpoint.port
    assert split.username is None


@settings(max_examples=400, deadline=None)
@given(st.text(max_size=80) | url_soup)
@example("0://[]@")  # (yarl raised IndexError on it, not ValueError)
def test_any_target_is_refused_or_stays_at_the_endpoint_origin(target: str) -> None:
    try:
        resolved = resolve_next_link(REQUEST, target, ENDPOINT)
    except UnsafeLinkError:
        return
    assert_stays_home(resolved, ENDPOINT)


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from(["http", "https", "HTTPS", "ftp", "file"]),
    st.sampled_from(
        ["partner.example.com", "127.0.0.1", "2130706433", "0x7f.1", "[::ffff:127.0.0.1]", "x"]
    ),
    st.one_of(st.none(), st.integers(0, 65535)),
    st.sampled_from([IP_ENDPOINT, ENDPOINT]),
)
def test_absolute_links_are_followed_only_to_the_same_origin(
    scheme: str, host: str, port: int | None, endpoint: URL
) -> None:
    target = f"{scheme}://{host}{'' if port is None else f':{port}'}/next?offset=1"
    link = URL(target)
    same = origin_of(link) == origin_of(endpoint) and link.scheme in ("http", "https")
    if same:
        assert_stays_home(resolve_next_link(endpoint, target, endpoint), endpoint)
    else:
        with pytest.raises(UnsafeLinkError):
            resolve_next_link(endpoint, target, endpoint)


@settings(max_examples=300, deadline=None)
@given(
    st.text("abcxyz0123456789-._~/", max_size=20),
    st.text("abc0123456789=&%", max_size=20),
)
def test_relative_links_resolve_like_rfc3986(path: str, query: str) -> None:
    target = f"{path.lstrip('/')}?{query}"
    resolved = resolve_next_link(REQUEST, target, ENDPOINT)
    assert_stays_home(resolved, ENDPOINT)
    assert resolved == REQUEST.join(URL(target))


# --- origin_of -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://partner.example.com/x", ("https", "partner.example.com", 443)),
        ("http://partner.example.com/x", ("http", "partner.example.com", 80)),
        ("HTTPS://Partner.Example.COM:443/x", ("https", "partner.example.com", 443)),
        ("https://partner.example.com:8443", ("https", "partner.example.com", 8443)),
        ("http://127.0.0.1:8080/x", ("http", "127.0.0.1", 8080)),
        ("http://[::1]:8080/x", ("http", "::1", 8080)),
        ("http://[0:0:0:0:0:0:0:1]/x", ("http", "::1", 80)),
        ("ftp://h/x", ("ftp", "h", 21)),
        ("/relative", ("", "", None)),
    ],
)
def test_origin_of(url: str, expected: tuple[str, str, int | None]) -> None:
    assert origin_of(URL(url)) == expected
