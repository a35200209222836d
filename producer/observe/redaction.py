"""Redaction: what every URL passes before it reaches a span, log line, event or error; and the
filter every log line passes, which masks the secrets in use.

In a URL a secret is replaced where it stands as a value (a query value, a path segment, the
fragment, the user info), whole, and nowhere else: a token that happens to be `t` never turns
`http` into `hREDACTEDREDACTEDp`. Query values under secret-looking names are masked whatever they
hold. In a log line a secret in use is masked wherever it appears (`SecretsFilter`).
"""

from __future__ import annotations

import logging
import sys
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


# -- log lines ---------------------------------------------------------------------------------

# Secrets this process uses (partner tokens as sent, Kafka SASL passwords): masked in every log
# line, whoever writes it. A library's debug line may hold one where no URL stands (aiokafka
# logs a SASL PLAIN request's bytes, password included), so here a secret is masked wherever it
# appears; one shorter than MIN_MASKED_SECRET would mask ordinary words and is left alone.
MIN_MASKED_SECRET: Final = 4
_in_use: set[str] = set()


def mask_in_logs(secret: str) -> None:
    """Mask `secret` in every log line from now on (as written, and as a bytes repr shows it)."""
    if len(secret) < MIN_MASKED_SECRET:
        return
    _in_use.add(secret)
    shown = repr(secret.encode())[2:-1]  # how b'...' in a debug line spells it
    if shown != secret and len(shown) >= MIN_MASKED_SECRET:
        _in_use.add(shown)


def mask_secrets(text: str) -> str:
    """`text` with every secret in use replaced by REDACTED (longest first: one secret may hold
    another)."""
    if not any(secret in text for secret in _in_use):
        return text
    for secret in sorted(_in_use, key=len, reverse=True):
        text = text.replace(secret, REDACTED)
    return text


class SecretsFilter(logging.Filter):
    """A handler's filter: the record's message, and its exception text, with secrets masked."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not _in_use:
            return True
        message = record.getMessage()
        masked = mask_secrets(message)
        if masked is not message:
            record.msg, record.args = masked, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = mask_secrets(record.exc_text)
        return True


def log_to_stderr(level: str | int, line_format: str) -> None:
    """Log lines on stderr at `level`, through the secrets filter (every handler of the root
    logger: records of every library's loggers pass them)."""
    logging.basicConfig(level=level, format=line_format, stream=sys.stderr)
    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, SecretsFilter) for f in handler.filters):
            handler.addFilter(SecretsFilter())
