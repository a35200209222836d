"""Redaction replaces a secret where it stands as a value, whole, and nowhere else (pure)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from yarl import URL

from producer.observe.redaction import REDACTED, redact_url


@pytest.mark.parametrize(
    ("url", "secret", "shown"),
    [
        # A one-character token never mangles what merely contains it.
        ("http://127.0.0.1:1/ocpi/versions", "t", "http://127.0.0.1:1/ocpi/versions"),
        (
            "https://partner.example/ocpi/2.2.1/tokens?offset=10&limit=100",
            "1",
            "https://partner.example/ocpi/2.2.1/tokens?offset=10&limit=100",
        ),
        # Where it is a value: a query value, a path segment, the fragment.
        ("https://p.example/tokens?cursor=s3cr3t", "s3cr3t", f"https://p.example/tokens?cursor={REDACTED}"),
        ("https://p.example/s3cr3t/tokens", "s3cr3t", f"https://p.example/{REDACTED}/tokens"),
        ("https://p.example/tokens#s3cr3t", "s3cr3t", f"https://p.example/tokens#{REDACTED}"),
        ("https://p.example/a%2Fb/x", "a/b", f"https://p.example/{REDACTED}/x"),
        # Part of a value is not the value.
        ("https://p.example/tokens?cursor=s3cr3t-2", "s3cr3t", "https://p.example/tokens?cursor=s3cr3t-2"),
        # Secret-looking names are masked whatever they hold; user info never shows.
        ("https://p.example/x?access_token=abc&offset=3", "", f"https://p.example/x?access_token={REDACTED}&offset=3"),
        ("https://user:pw@p.example/x", "", "https://p.example/x"),
    ],
)  # fmt: skip
def test_a_secret_is_masked_only_where_it_is_a_value(url: str, secret: str, shown: str) -> None:
    assert redact_url(url, (secret,)) == shown


safe_text = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-._", min_size=1, max_size=12)


@given(
    host=safe_text.map(lambda h: f"{h}.example"),
    segments=st.lists(safe_text, max_size=4),
    query=st.lists(st.tuples(st.sampled_from(["offset", "limit", "from"]), safe_text), max_size=3),
    secret=st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789", min_size=1, max_size=3),
)  # fmt: skip
def test_a_url_without_the_secret_as_a_value_comes_out_as_it_went_in(
    host: str, segments: list[str], query: list[tuple[str, str]], secret: str
) -> None:
    url = URL.build(scheme="https", host=host, path="/" + "/".join(segments), query=query)
    values = {*segments, *(v for _, v in query)}
    shown = redact_url(url, (secret,))
    if secret in values:
        assert REDACTED in shown
    else:
        assert shown == str(url)
