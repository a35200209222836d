"""Progress: events on `<prefix>.progress` (key: pull id), and what the operator sees.

Events are produced without blocking the pull; `flush()` waits for their acknowledgements at the
end. What a human sees (a live bar, or log lines) is the `View`'s business (view.py).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from aiokafka.errors import KafkaError
from pydantic import BaseModel

from producer.errors import PullError
from producer.kafka.output import KafkaOutput
from producer.kafka.records import OutMessage
from producer.observe.telemetry import PullMetrics
from producer.observe.view import View
from schemas.events import (
    EventBase,
    Heartbeat,
    PageFetched,
    PullCompleted,
    PullFailed,
    PullStarted,
    RetryScheduled,
    Warning_,
    WindowCompleted,
)

log = logging.getLogger("ocpi_puller")


class ProgressReporter:
    """Counts one pull's progress, emits its events, and feeds the view."""

    def __init__(
        self,
        kafka: KafkaOutput | None,
        topic: str,
        view: View,
        *,
        pull_id: str,
        partner: str,
        module: str,
        shard_index: int = 0,
        shard_count: int = 1,
        metrics: PullMetrics | None = None,
    ) -> None:
        self._kafka = kafka
        self._metrics = metrics
        self._topic = topic
        self._view = view
        self._base: dict[str, Any] = {
            "pull_id": pull_id,
            "partner": partner,
            "module": module,
            "shard_index": shard_index,
            "shard_count": shard_count,
        }
        self._label = f"{partner}/{module}"
        self._handle: int | None = None
        self._started = time.monotonic()
        self._tasks: set[asyncio.Task[None]] = set()
        self.expected_total: int | None = None
        # Requests in flight the partner may have now (read from its limiter), for events.
        self.concurrency: Callable[[], int] | None = None
        self.objects_emitted = 0
        self.dead_lettered = 0
        self.pages = 0
        # Warning codes this pull reported, each with its first message (for --fail-on).
        self.warnings: dict[str, str] = {}

    def set_version(self, ocpi_version: str) -> None:
        """Every later event carries the version."""
        self._base["ocpi_version"] = ocpi_version

    @property
    def elapsed_s(self) -> float:
        """Seconds since the reporter was created (the pull's start)."""
        return time.monotonic() - self._started

    def rate(self) -> float:
        """Objects acknowledged per second so far."""
        elapsed = self.elapsed_s
        return self.objects_emitted / elapsed if elapsed > 0 else 0.0

    def _emit(self, event_type: type[EventBase], **fields: Any) -> EventBase:
        event = event_type(**self._base, at=datetime.now(UTC), **fields)
        if self._kafka is not None:
            task = asyncio.ensure_future(self._send(event))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return event

    async def _send(self, event: BaseModel) -> None:
        assert self._kafka is not None
        message = OutMessage(
            str(self._base["pull_id"]).encode(), event.model_dump_json().encode(), []
        )
        try:
            # In the background: during a broker outage events wait (and are delivered once the
            # broker is back, the wait itself reported among them) up to the Kafka deadline.
            await self._kafka.send_and_wait(self._topic, [message], report=False)
        except (KafkaError, PullError, OSError) as error:
            # A lost progress event must not stop the pull; it is counted and logged.
            log.warning("progress event not delivered: %s", type(error).__name__)

    def started(self, **fields: Any) -> None:
        """`pull_started`, and the bar appears."""
        self.expected_total = fields.get("total_reported")
        self._emit(PullStarted, **fields)
        self._handle = self._view.add(self._label, self.expected_total, str(self._base["pull_id"]))
        log.info(
            "pull started pull=%s partner=%s module=%s windows=%s total=%s",
            self._base["pull_id"],
            self._base["partner"],
            self._base["module"],
            fields.get("windows_this_shard"),
            self.expected_total,
        )

    def page(
        self,
        *,
        window: int,
        offset: int,
        count: int,
        dead: int,
        total: int | None,
        new: int | None = None,
    ) -> None:
        """A page's messages were acknowledged: `count` objects, `new` of them (all, when not
        given) written by the pull for the first time."""
        self.objects_emitted += count if new is None else new
        self.dead_lettered += dead
        self.pages += 1
        if self._metrics is not None:
            self._metrics.page(count, dead)
        rate = self.rate()
        eta = None
        if self.expected_total is not None and rate > 0:
            eta = max(0.0, (self.expected_total - self.objects_emitted - self.dead_lettered) / rate)
        self._emit(
            PageFetched,
            window=window,
            offset=offset,
            count=count,
            total_reported=total,
            objects_emitted=self.objects_emitted,
            dead_lettered=self.dead_lettered,
            pages=self.pages,
            rate_per_s=round(rate, 1),
            eta_s=None if eta is None else round(eta, 1),
            expected_total=self.expected_total,
            concurrency=None if self.concurrency is None else self.concurrency(),
        )
        if self._handle is not None:
            done = self.objects_emitted + self.dead_lettered
            self._view.update(self._handle, done, self.expected_total, rate)

    def retry(
        self, reason: str, wait_s: float, attempt: int, url: str | None, window: int | None
    ) -> None:
        """A request or produce will be retried."""
        if self._metrics is not None:
            self._metrics.retry(reason)
        self._emit(
            RetryScheduled,
            reason=reason,
            wait_s=round(wait_s, 3),
            attempt=attempt,
            url=url,
            window=window,
        )
        log.info(
            "retry pull=%s reason=%r wait=%.2fs attempt=%d",
            self._base["pull_id"],
            reason,
            wait_s,
            attempt,
        )

    def heartbeat(self, heartbeat_s: float) -> None:
        """`heartbeat`: still alive, with the counts so far."""
        self._emit(
            Heartbeat,
            heartbeat_s=heartbeat_s,
            objects_emitted=self.objects_emitted,
            dead_lettered=self.dead_lettered,
            pages=self.pages,
            concurrency=None if self.concurrency is None else self.concurrency(),
        )

    def warning(self, code: str, message: str, window: int | None = None) -> None:
        """A partner quirk the operator should see."""
        self.warnings.setdefault(code, message)
        self._emit(Warning_, code=code, message=message, window=window)
        log.warning("warning pull=%s %s: %s", self._base["pull_id"], code, message)

    def window_done(self, **fields: Any) -> None:
        """`window_completed`."""
        self._emit(WindowCompleted, **fields)

    def completed(self, **fields: Any) -> None:
        """`pull_completed`."""
        self._emit(PullCompleted, **fields)
        if self._metrics is not None:
            self._metrics.finished(fields["duration_s"], fields["complete"])

    def failed(self, **fields: Any) -> None:
        """`pull_failed`."""
        self._emit(PullFailed, **fields)
        if self._metrics is not None:
            self._metrics.finished(fields["duration_s"], False)

    async def flush(self, timeout_s: float | None = None) -> None:
        """Wait for every event's acknowledgement (each is bounded by the Kafka deadline, and
        all of them by `timeout_s` when given)."""
        pending = list(self._tasks)
        if pending:
            await asyncio.wait(pending, timeout=timeout_s)
