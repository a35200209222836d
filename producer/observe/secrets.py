"""The secrets this process uses (partner tokens as sent, Kafka SASL passwords), masked in every
log line whoever writes it: a library's debug line may hold one where no URL stands (aiokafka
logs a SASL PLAIN login's bytes, password included). So here a secret is masked wherever it
appears; one shorter than MIN_MASKED_SECRET would mask ordinary words and is left alone.

Registered where the settings and the partners file are read (`cli_settings`, `partners`);
the filter sits on every handler `log_to_stderr` sets up.
"""

from __future__ import annotations

import base64
import logging
import sys
from typing import Final

from producer.observe.redaction import REDACTED

MIN_MASKED_SECRET: Final = 4
_in_use: set[str] = set()


def mask_in_logs(secret: str) -> None:
    """Mask `secret` in every log line from now on: as written, as a bytes repr shows it, and
    Base64-encoded (how OCPI 2.2+ sends a token)."""
    if len(secret) < MIN_MASKED_SECRET:
        return
    encoded = base64.b64encode(secret.encode("utf-8")).decode("ascii")
    shown = repr(secret.encode())[2:-1]  # how b'...' in a debug line spells it
    _in_use.update(s for s in (secret, shown, encoded) if len(s) >= MIN_MASKED_SECRET)


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
