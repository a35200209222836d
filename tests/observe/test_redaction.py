"""Redaction replaces a secret in a URL where it stands as a value, whole, and nowhere else (pure);
the log filter masks a secret in use wherever a line holds it."""

from __future__ import annotations

import io
import logging

import pytest
from hypothesis import given
from hypothesis import strategies as st
from yarl import URL

from producer.observe.redaction import REDACTED, SecretsFilter, mask_in_logs, redact_url


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


def test_the_log_filter_masks_secrets_in_use_wherever_a_line_holds_them() -> None:
    secret = "pässwörd-42"
    mask_in_logs(secret)
    mask_in_logs("abc")  # too short to mask: it would mask ordinary words
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(SecretsFilter())
    logger = logging.getLogger("test.redaction.filter")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        # As aiokafka's debug line shows a SASL PLAIN login: a bytes repr, escapes and all.
        logger.warning("request %s", f"sasl_auth_bytes={secret.encode()!r}")
        logger.warning("plain %s in a sentence", secret)
        try:
            raise ValueError(f"refused {secret}")
        except ValueError:
            logger.exception("failed")
        logger.warning("abc stays")
    finally:
        logger.removeHandler(handler)
    text = stream.getvalue()
    assert secret not in text
    assert repr(secret.encode())[2:-1] not in text
    assert text.count(REDACTED) == 3
    assert "abc stays" in text
