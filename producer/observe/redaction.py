"""Redaction: what every URL passes before it reaches a span, log line, event or error. Pure.

In a URL a secret is replaced where it stands as a value (a query value, a path segment, the
fragment, the user info), whole, and nowhere else: a token that happens to be `t` never turns
`http` into `hREDACTEDREDACTEDp`. Query values under secret-looking names are masked whatever they
hold. (In a log line a secret in use is masked wherever it appears: `observe.secrets`.)
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final
from urllib.parse import quote

from yarl import URL

SECRET_QUERY_WORDS: Final = ("token", "key", "secret", "sig", "auth", "pass", "session", "code")
REDACTED: Final = "REDACTED"


def _is_secret(value: str, secrets: Iterable[str]) -> bool:
    return any(secret and value in (secret, quote(secret, safe="")) for secret in secrets)


def redact_url(url: URL | str, secrets: tuple[str, ...] = ()) -> str:
    """A URL safe to show: no user info; a query value under a secret-looking name, or equal to
    a known secret, masked; a path segment or fragment equal to a known secret masked."""
    parsed = URL(url) if isinstance(url, str) else url
    if parsed.raw_user is not None or parsed.raw_password is not None:
        parsed = parsed.with_user(None)
    if parsed.query:
        cleaned = [
            (
                name,
                REDACTED
                if any(w in name.lower() for w in SECRET_QUERY_WORDS) or _is_secret(value, secrets)
                else value,
            )
            for name, value in parsed.query.items()
        ]
        parsed = parsed.with_query(cleaned)
    segments = parsed.raw_path.split("/")
    if any(_is_secret(segment, secrets) for segment in segments):
        kept = [REDACTED if _is_secret(s, secrets) else s for s in segments]
        parsed = parsed.with_path("/".join(kept), encoded=True, keep_query=True, keep_fragment=True)
    if parsed.raw_fragment and _is_secret(parsed.fragment, secrets):
        parsed = parsed.with_fragment(REDACTED)
    return str(parsed)
