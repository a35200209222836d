"""The log filter masks a secret in use wherever a line holds it."""

from __future__ import annotations

import base64
import io
import logging

from producer.observe.redaction import REDACTED
from producer.observe.secrets import SecretsFilter, mask_in_logs


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
        logger.warning("Authorization: Token %s", base64.b64encode(secret.encode()).decode())
        logger.warning("abc stays")
    finally:
        logger.removeHandler(handler)
    text = stream.getvalue()
    assert secret not in text
    assert repr(secret.encode())[2:-1] not in text
    assert text.count(REDACTED) == 4
    assert "abc stays" in text
