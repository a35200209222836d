"""Progress events on `<prefix>.progress` (key: pull id). Versioned by `schema_version`.

One stream per pull: `pull_started`, then `page_fetched` per page acknowledged by Kafka, `retry`
per retried request (or Kafka wait), `warning` for partner quirks worth an operator's eye,
`window_completed` per date window, `heartbeat` every `--heartbeat-s` while it runs, and finally
`pull_completed` or `pull_failed` (reason `interrupted` when a signal stopped it).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

EVENT_SCHEMA_VERSION: Literal[1] = 1


class EventBase(BaseModel):
    """Fields every progress event carries."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    schema_version: Literal[1] = EVENT_SCHEMA_VERSION
    pull_id: str
    partner: str
    module: str
    ocpi_version: str | None = None
    shard_index: int = 0
    shard_count: int = 1
    at: datetime


class PullStarted(EventBase):
    """The pull is planned and about to fetch."""

    event: Literal["pull_started"] = "pull_started"
    url: str = Field(description="module endpoint, without secrets")
    kind: Literal["full", "incremental"]
    date_from: datetime | None
    date_to: datetime = Field(description="pinned: objects updated later belong to the next pull")
    windows_total: int
    windows_this_shard: int
    total_reported: int | None = Field(description="X-Total-Count over this shard's windows")
    resumed: bool


class PageFetched(EventBase):
    """A page was fetched and Kafka acknowledged all its messages."""

    event: Literal["page_fetched"] = "page_fetched"
    window: int
    offset: int
    count: int
    total_reported: int | None = Field(description="X-Total-Count of this page's window")
    objects_emitted: int = Field(description="objects acknowledged so far in this pull")
    dead_lettered: int
    pages: int
    rate_per_s: float
    eta_s: float | None
    expected_total: int | None = Field(description="planned objects for this shard")
    concurrency: int | None = Field(
        default=None, description="requests the partner may have in flight now (its limiter)"
    )


class RetryScheduled(EventBase):
    """A request (or a Kafka produce) failed and will be tried again after `wait_s`."""

    event: Literal["retry"] = "retry"
    reason: str
    wait_s: float
    attempt: int
    url: str | None = None
    window: int | None = None


class Warning_(EventBase):
    """Something the operator should know that did not stop the pull."""

    event: Literal["warning"] = "warning"
    code: str
    message: str
    window: int | None = None


class WindowCompleted(EventBase):
    """A date window is finished (complete or not)."""

    event: Literal["window_completed"] = "window_completed"
    window: int
    date_from: datetime | None
    date_to: datetime
    complete: bool
    objects_emitted: int
    distinct_objects: int
    first_total: int | None
    shortfall: int
    passes: int
    step_backs: int


class PullCompleted(EventBase):
    """The pull ended; `complete` says whether every object is known to be in Kafka."""

    event: Literal["pull_completed"] = "pull_completed"
    complete: bool
    objects_emitted: int
    pages: int
    dead_lettered: int
    retries: int
    total_reported: int | None
    duration_s: float
    windows_complete: int
    windows_incomplete: int
    shortfall: int
    skipped_unchanged: int = 0
    tombstones: int = 0


class PullFailed(EventBase):
    """The pull stopped on an error; `resumable` when a checkpoint lets the same pull-id go on."""

    event: Literal["pull_failed"] = "pull_failed"
    reason: str = Field(description="error kind, e.g. partner_auth, partner_unavailable")
    message: str
    objects_emitted: int
    duration_s: float
    resumable: bool


class Heartbeat(EventBase):
    """The pull is alive (every `heartbeat_s`, whatever happens): a pull silent for three
    heartbeats is stale (its process is gone, or stuck)."""

    event: Literal["heartbeat"] = "heartbeat"
    heartbeat_s: float
    objects_emitted: int
    dead_lettered: int
    pages: int
    concurrency: int | None = None


ProgressEvent = Annotated[
    PullStarted
    | Heartbeat
    | PageFetched
    | RetryScheduled
    | Warning_
    | WindowCompleted
    | PullCompleted
    | PullFailed,
    Field(discriminator="event"),
]
PROGRESS_EVENT_ADAPTER: TypeAdapter[ProgressEvent] = TypeAdapter(ProgressEvent)


def parse_progress_event(data: bytes) -> ProgressEvent:
    """Decode one message value of the progress topic."""
    return PROGRESS_EVENT_ADAPTER.validate_json(data)
