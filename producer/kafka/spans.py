"""Kafka produce spans: one PRODUCER span per send, from the call to the last acknowledgement
(OpenTelemetry's messaging conventions)."""

from __future__ import annotations

import asyncio
from typing import Any

from opentelemetry import trace


def produce_span(tracer: trace.Tracer, topic: str, count: int) -> trace.Span:
    """A PRODUCER span for `count` messages to `topic` (OpenTelemetry messaging conventions)."""
    return tracer.start_span(
        "kafka.produce",
        kind=trace.SpanKind.PRODUCER,
        attributes={
            "messaging.system": "kafka",
            "messaging.operation.name": "send",
            "messaging.destination.name": topic,
            "messaging.batch.message_count": count,
        },
    )


def end_span(span: trace.Span, error: BaseException | None) -> None:
    if error is not None:
        span.set_attribute("error.type", type(error).__name__)
        span.set_status(trace.Status(trace.StatusCode.ERROR, type(error).__name__))
    span.end()


def failure_of(future: asyncio.Future[Any]) -> BaseException | None:
    if future.cancelled():
        return asyncio.CancelledError()
    return future.exception()
