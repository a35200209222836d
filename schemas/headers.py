"""Kafka header names on object, dead-letter and progress messages (a consumer contract)."""

from __future__ import annotations

from typing import Final

OCPI_VERSION: Final = "ocpi-version"
OCPI_MODULE: Final = "ocpi-module"
PARTNER: Final = "partner"
PULL_ID: Final = "pull-id"
SOURCE_OFFSET: Final = "source-offset"
# The date window of the pull whose page carried the object (a resume checks each window's
# objects are still in Kafka by it).
PULL_WINDOW: Final = "pull-window"
TRACEPARENT: Final = "traceparent"  # W3C trace context of the page span that fetched the object

ALL: Final = (
    OCPI_VERSION,
    OCPI_MODULE,
    PARTNER,
    PULL_ID,
    SOURCE_OFFSET,
    PULL_WINDOW,
    TRACEPARENT,
)
# Only on an object produced again from a dead letter (`ocpi-puller redrive`): which redrive.
REDRIVE_ID: Final = "redrive-id"
