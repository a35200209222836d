"""Redaction: what every URL passes before it reaches a span, log line, event or error. Pure."""

from __future__ import annotations

from typing import Final

from yarl import URL

SECRET_QUERY_WORDS: Final = ("token", "key", "secret", "sig", "auth", "pass", "session", "code")
REDACTED: Final = "REDACTED"


def redact_url(url: URL | str, secrets: tuple[str, ...] = ()) -> str:
    """A URL safe to show: no user info, secret-looking query values and known secrets masked."""
    parsed = URL(url) if isinstance(url, str) else url
    if parsed.raw_user is not None or parsed.raw_password is not None:
        parsed = parsed.with_user(None)
    if parsed.query:
        cleaned = [
            (name, REDACTED if any(w in name.lower() for w in SECRET_QUERY_WORDS) else value)
            for name, value in parsed.query.items()
        ]
        parsed = parsed.with_query(cleaned)
    text = str(parsed)
    for secret in secrets:
        if secret:
            text = text.replace(secret, REDACTED)
    return text
