"""Our own Kafka records besides progress events: dead letters, checkpoints, sync state.

Topics and keys:
* `<prefix>.deadletter`, key = the object's key when it has one, else `<partner>/<module>/?/<pull>`:
  `DeadLetter`.
* `<prefix>.checkpoints` (compacted): `PullPlan` under `<partner>/<module>/<pull_id>`,
  `WindowCheckpoint` under `<partner>/<module>/<pull_id>/window/<index>`, and `SyncState` under
  `<partner>/<module>` (where the next `--incremental` pull starts). `ocpi-puller reset` writes a
  `PullReset` under the plan's key and tombstones the window keys: the same pull id starts afresh.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

RECORD_SCHEMA_VERSION: Literal[1] = 1


class DeadLetter(BaseModel):
    """An object the partner sent that failed validation (or had no usable key)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    schema_version: Literal[1] = RECORD_SCHEMA_VERSION
    pull_id: str
    partner: str
    module: str
    ocpi_version: str
    key: str | None = Field(description="the object's Kafka key, when it could be derived")
    source_url: str = Field(description="the page URL, without secrets")
    source_offset: int = Field(description="the object's position in the partner's list")
    errors: list[str] = Field(description="validation errors, each with its field path")
    object: Any = Field(description="the object exactly as the partner sent it")
    failed_at: datetime


class WindowSpec(BaseModel):
    """One planned date window: `[date_from, date_to)` on `last_updated`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    index: int
    date_from: datetime | None
    date_to: datetime
    expected: int = Field(description="X-Total-Count probed when planning")


class PullPlan(BaseModel):
    """A pull's fixed plan: the pinned snapshot and its windows (shared by every shard)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    schema_version: Literal[1] = RECORD_SCHEMA_VERSION
    record: Literal["plan"] = "plan"
    pull_id: str
    partner: str
    module: str
    ocpi_version: str
    kind: Literal["full", "incremental"]
    date_from: datetime | None
    date_to: datetime = Field(description="pinned at the start of the pull")
    windows: list[WindowSpec]
    created_at: datetime
    completed: bool = False
    window_size: int | None = Field(default=None, description="target objects per window")
    limit: int | None = Field(default=None, description="page size asked for")
    totals_reported: bool = Field(
        default=True, description="whether the partner sent X-Total-Count when planning"
    )
    planning_requests: int = Field(default=0, description="limit=1 count requests planning made")
    date_to_behind_s: float = Field(
        default=0.0,
        description="how far before our clock date_to was pinned: the partner's clock lagged",
    )


class WindowCheckpoint(BaseModel):
    """How far a window got: resume at `next_offset` (never at a stored URL: hub links expire)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    schema_version: Literal[1] = RECORD_SCHEMA_VERSION
    record: Literal["window"] = "window"
    pull_id: str
    partner: str
    module: str
    window: int
    date_from: datetime | None
    date_to: datetime
    pinned_date_to: datetime
    next_offset: int = Field(description="every object before it is acknowledged by Kafka")
    total_at_offset: int | None = Field(description="X-Total-Count when next_offset was reached")
    done: bool
    complete: bool = False
    shortfall: int = 0
    passes: int = 1
    objects_emitted: int = 0
    updated_at: datetime
    # The window's figures so far, for a resumed pull's summary of the whole pull.
    dialects: dict[str, int] = Field(default_factory=dict, description="objects per dialect")
    narrowed: bool = Field(
        default=False, description="read as date pieces of one page each (an unstable order)"
    )
    duplicate_keys: int = 0
    resent_objects: int = 0
    written_through: dict[str, int] = Field(
        default_factory=dict,
        description=(
            "per partition written ('topic:partition'), the highest offset Kafka acknowledged "
            "for this window's pages: a resume that finds the partition's end not past it knows "
            "Kafka lost acknowledged writes (at-least-once)"
        ),
    )
    kafka_lost_writes: bool = Field(
        default=False,
        description=(
            "Kafka had shown the run that wrote this checkpoint that it lost writes it "
            "acknowledged (offsets given again): a resume reads every window again"
        ),
    )

    @property
    def finished(self) -> bool:
        """Done and complete: a resume leaves this window alone (one that ended short is
        pulled again)."""
        return self.done and self.complete


class SyncState(BaseModel):
    """The last complete pull of a partner's module: an incremental pull starts at its date_to."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    schema_version: Literal[1] = RECORD_SCHEMA_VERSION
    record: Literal["sync"] = "sync"
    partner: str
    module: str
    pull_id: str
    kind: Literal["full", "incremental"]
    date_to: datetime
    completed_at: datetime


class PullReset(BaseModel):
    """`ocpi-puller reset`: the pull's plan and windows are void; the same id starts afresh.

    Written under the plan's key, so compaction keeps it (the audit of who reset what, when)
    until a new plan with the same id replaces it; the window keys get tombstones."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    schema_version: Literal[1] = RECORD_SCHEMA_VERSION
    record: Literal["reset"] = "reset"
    pull_id: str
    partner: str
    module: str
    reset_at: datetime
    windows_cleared: int = Field(description="window records tombstoned with it")
    plan_date_to: datetime | None = Field(description="the pinned date_to of the plan reset")
    plan_completed: bool = Field(description="whether the plan reset had completed")


CheckpointRecord = Annotated[
    PullPlan | WindowCheckpoint | SyncState | PullReset, Field(discriminator="record")
]
CHECKPOINT_ADAPTER: TypeAdapter[CheckpointRecord] = TypeAdapter(CheckpointRecord)


def parse_checkpoint_record(data: bytes) -> CheckpointRecord:
    """Decode one message value of the checkpoints topic."""
    return CHECKPOINT_ADAPTER.validate_json(data)
