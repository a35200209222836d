"""The partner's HTTP session for the operator commands: the one `pull` uses (headers, token
encoding, retries, pacing, TLS, redaction), without spans or progress events."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from opentelemetry import metrics, trace

from producer.config import PullSettings, PullTarget
from producer.observe.telemetry import INSTRUMENTATION_NAME, Telemetry
from producer.ocpi.http.client import OcpiHttp
from producer.ocpi.http.ratelimit import RequestGate
from producer.ocpi.protocol.responses import RetryNotice
from producer.pull import assembly

log = logging.getLogger("ocpi_puller")


def _log_retry(notice: RetryNotice) -> None:
    log.info(
        "retry: %s (in %.1f s, attempt %d) %s",
        notice.reason,
        notice.wait_s,
        notice.attempt,
        notice.url,
    )


@asynccontextmanager
async def partner_session(target: PullTarget, settings: PullSettings) -> AsyncIterator[OcpiHttp]:
    """An HTTP session to `target` as `pull` opens it; retries are logged."""
    quiet = Telemetry(trace.NoOpTracer(), metrics.NoOpMeter(INSTRUMENTATION_NAME))
    gate = RequestGate(target.options.rate_limit, target.options.rate_burst)
    limiter = assembly.partner_limiter(target.options)
    async with assembly.partner_http(target, settings, quiet, gate, _log_retry, limiter) as http:
        yield http
