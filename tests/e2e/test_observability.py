"""Spans, progress events and secrecy of a real pull (sandbox + broker, in-memory span exporter)."""

from __future__ import annotations

import base64
import logging

import orjson
import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from producer.observe.telemetry import setup_telemetry
from sandbox.faults import FaultRates
from schemas.events import PageFetched, PullCompleted, PullStarted, parse_progress_event
from tests.support import pull, records, sandbox


def page_spans(spans: tuple[ReadableSpan, ...]) -> list[ReadableSpan]:
    return [s for s in spans if s.name == "ocpi.page" and "ocpi.window" in (s.attributes or {})]


async def test_progress_events_and_spans_match_the_pages(bootstrap: str, prefix: str) -> None:
    exporter = InMemorySpanExporter()
    async with sandbox(sizes={"tokens": 5000}, max_limit=300) as (base, _):
        result = await pull(
            base, bootstrap, prefix, telemetry=setup_telemetry({}, span_exporter=exporter)
        )
    summary = result.summaries[0]
    assert result.exit_code == 0
    spans = exporter.get_finished_spans()
    roots = [s for s in spans if s.name == "ocpi.pull"]
    assert len(roots) == 1
    root = roots[0]
    pages = page_spans(spans)
    assert len(pages) == summary.pages == 17  # ceil(5000 / 300)
    for span in pages:
        assert span.parent is not None
        assert span.parent.span_id == root.context.span_id
        assert span.context.trace_id == root.context.trace_id
        attributes = span.attributes or {}
        assert attributes["http.response.status_code"] == 200
        assert attributes["ocpi.status_code"] == 1000
        assert attributes["ocpi.total_count"] == 5000
        assert attributes["ocpi.attempt"] == 1
        assert attributes["ocpi.limit"] == 1000
        assert "sandbox-token" not in str(attributes)
    assert sum(int((s.attributes or {})["ocpi.object_count"]) for s in pages) == 5000

    events = [parse_progress_event(r.value) for r in await records(bootstrap, f"{prefix}.progress")]
    assert all(
        r.key.decode() == summary.pull_id for r in await records(bootstrap, f"{prefix}.progress")
    )
    assert isinstance(events[0], PullStarted)
    assert events[0].total_reported == 5000
    fetched = [e for e in events if isinstance(e, PageFetched)]
    assert len(fetched) == summary.pages
    assert max(e.objects_emitted for e in fetched) == 5000
    assert sum(e.count for e in fetched) == 5000
    completed = [e for e in events if isinstance(e, PullCompleted)]
    assert len(completed) == 1
    assert completed[0].complete
    assert completed[0].objects_emitted == 5000

    # Each message's traceparent names the span of the page that fetched it.
    page_ids = {
        (format(s.context.trace_id, "032x"), format(s.context.span_id, "016x")): s for s in pages
    }
    messages = await records(bootstrap, f"{prefix}.tokens")
    for message in messages:
        headers = dict(message.headers)
        _, trace_id, span_id, _ = headers["traceparent"].decode().split("-")
        span = page_ids[(trace_id, span_id)]
        offset = int(headers["source-offset"])
        start = int((span.attributes or {})["ocpi.offset"])
        assert start <= offset < start + int((span.attributes or {})["ocpi.object_count"])


async def test_retries_show_as_events_and_failed_attempt_spans(bootstrap: str, prefix: str) -> None:
    exporter = InMemorySpanExporter()
    async with sandbox(sizes={"tokens": 2000}, max_limit=100, faults=FaultRates(error=0.2)) as (
        base,
        state,
    ):
        result = await pull(
            base, bootstrap, prefix, telemetry=setup_telemetry({}, span_exporter=exporter)
        )
        errors = state.stats.faults["error"]
    assert result.exit_code == 0
    failed = [
        s for s in exporter.get_finished_spans() if s.name == "ocpi.page" and not s.status.is_ok
    ]
    assert len(failed) == errors > 0
    events = [parse_progress_event(r.value) for r in await records(bootstrap, f"{prefix}.progress")]
    retries = [e for e in events if e.event == "retry"]
    assert len(retries) == errors == result.summaries[0].retries


@pytest.mark.parametrize("version", ["2.2.1", "2.1.1"])
async def test_the_token_never_leaks(
    bootstrap: str, prefix: str, version: str, caplog: pytest.LogCaptureFixture
) -> None:
    secret = "Sup3r-S3cret-T0ken-do-not-leak"
    forms = [secret, base64.b64encode(secret.encode()).decode()]
    exporter = InMemorySpanExporter()
    caplog.set_level(logging.DEBUG)
    faults = FaultRates(error=0.1, throttle=0.05, envelope_error=0.05)
    async with sandbox(
        sizes={"tokens": 1500}, max_limit=100, faults=faults, invalid_rate=0.05, token_value=secret
    ) as (base, _):
        ok = await pull(
            base,
            bootstrap,
            prefix,
            token=secret,
            ocpi_version=version,
            telemetry=setup_telemetry({}, span_exporter=exporter),
        )
        refused = await pull(base, bootstrap, prefix, token=secret + "-wrong", ocpi_version=version)
    assert ok.exit_code == 0
    assert refused.exit_code == 3
    channels: dict[str, str] = {
        "logs": caplog.text,
        "summaries": orjson.dumps([s.as_dict() for s in ok.summaries + refused.summaries]).decode(),
        "spans": "\n".join(s.to_json() for s in exporter.get_finished_spans()),
    }
    for topic in ("progress", "deadletter", "checkpoints", "tokens"):
        channels[topic] = "\n".join(
            repr(r.key) + repr(r.headers) + (r.value or b"").decode()
            for r in await records(bootstrap, f"{prefix}.{topic}")
        )
    assert channels["deadletter"]
    assert channels["spans"]
    assert channels["progress"]
    for name, text in channels.items():
        for form in forms:
            assert form not in text, f"the token leaked into {name}"


async def test_metrics_count_objects_pages_and_retries(bootstrap: str, prefix: str) -> None:
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader

    reader = InMemoryMetricReader()
    async with sandbox(
        sizes={"tokens": 1200}, max_limit=100, invalid_rate=0.05, faults=FaultRates(error=0.3)
    ) as (base, _):
        result = await pull(
            base, bootstrap, prefix, telemetry=setup_telemetry({}, metric_reader=reader)
        )
    summary = result.summaries[0]
    data = reader.get_metrics_data()
    assert data is not None
    points: dict[str, float] = {}
    for resource_metrics in data.resource_metrics:
        for scope in resource_metrics.scope_metrics:
            for metric in scope.metrics:
                for point in metric.data.data_points:
                    value = getattr(point, "value", None)
                    if value is None:
                        value = point.sum  # type: ignore[union-attr]
                    points[metric.name] = points.get(metric.name, 0) + value
    assert points["ocpi_puller.objects_emitted"] == summary.objects_emitted
    assert points["ocpi_puller.pages"] == summary.pages
    assert points["ocpi_puller.dead_lettered"] == summary.dead_lettered > 0
    assert points.get("ocpi_puller.retries") == summary.retries > 0
    assert points["ocpi_puller.pull.duration"] > 0
