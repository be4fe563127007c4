"""The envelope every canonical event travels in."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from pydantic import AwareDatetime, Field, StringConstraints

from schemas._base import HubModel, NonEmptyStr, SourceSystem

EventType = Annotated[str, StringConstraints(pattern=r"^[a-z_]+\.[a-z_]+$")]


class Source(HubModel):
    """Where the fact came from: enough to trace it back to the exact raw bytes."""

    system: SourceSystem
    site: NonEmptyStr
    message_id: NonEmptyStr
    raw_ref: str | None = None
    adapter_version: NonEmptyStr


class EventBase(HubModel):
    """Fields shared by every event; each concrete event narrows `type` and `payload`.

    `occurred_at` is business time from the source; `recorded_at` is when the hub learned it
    (the receive time of the raw message, so re-translation is deterministic).
    `subject` is the aggregate id the topic is keyed by.
    """

    event_id: UUID
    type: EventType
    schema_version: int = Field(ge=1)
    occurred_at: AwareDatetime
    recorded_at: AwareDatetime
    source: Source
    subject: NonEmptyStr
    correlation_id: str | None = None
    causation_id: str | None = None
