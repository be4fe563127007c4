"""`GET /channels`: every source over every transport, its state, counts and last hour.

What the console's first page and `hub channels` show (hub.channels): the MLLP listener, each
inbox folder, each HTTP ingest endpoint (FHIR included) and each raw topic, with state
(listening / stopped / erroring), when it last received, counts from the raw archive (exact
across restarts and processes) and per-minute series for the last hour.

Needs raw_meta (integrator, auditor, admin), like the message browser. The counts cover the
whole hospital: a department-scoped key is refused (403), never shown partial numbers.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Literal, cast

from fastapi import APIRouter, HTTPException
from fastapi import status as http
from pydantic import BaseModel, ConfigDict, Field

from hub.api.deps import ServicesDep  # noqa: TC001  (FastAPI reads the annotations at runtime)
from hub.api.scope import whole_hospital

if TYPE_CHECKING:
    from hub.channels import Channel

router = APIRouter(tags=["operations"], dependencies=[whole_hospital("channels")])
State = Literal["listening", "stopped", "erroring"]


class _Out(BaseModel):
    model_config = ConfigDict(frozen=True)


class ChannelCountsOut(_Out):
    received: int = Field(description="Messages archived (distinct: an exact resend is counted in resends)")
    bytes: int
    resends: int
    pending: int = Field(description="Archived, translation not finished")
    translated: int = Field(description="Translated into events")
    archived_only: int = Field(description="Kept, mapped to nothing (e.g. an HL7 type the hub does not map)")
    dead_lettered: int = Field(description="With open dead letters now")
    events: int
    rows_dead_lettered: int
    unclaimed_cells: int = Field(description="Non-empty source cells no mapping claimed (files)")
    ack_aa: int
    ack_ae: int
    ack_ar: int


class ChannelOut(_Out):
    channel: str = Field(description="`<system>.<transport>`, e.g. his.mllp", examples=["his.mllp"])
    system: str
    transport: str = Field(description="mllp, file (inbox folder), http (ingest, FHIR), topic (raw topic)")
    endpoint: str = Field(description="Where it listens: host:port, folder, path or topic")
    state: State
    state_detail: str | None
    last_received_at: datetime | None
    last_error: str | None
    last_error_at: datetime | None
    counts: ChannelCountsOut
    on_topic: int | None = Field(description="Raw-topic channels: records on the topic")
    rate_per_minute: float = Field(description="Received per minute, last five minutes")
    received_last_hour: list[int] = Field(description="Per minute, oldest first (60 values)")
    dead_lettered_last_hour: list[int] = Field(description="Per minute, oldest first (60 values)")


class ChannelsOut(_Out):
    items: list[ChannelOut]
    generated_at: datetime


def channel_out(ch: Channel) -> ChannelOut:
    c = ch.counts
    return ChannelOut(
        channel=ch.channel,
        system=ch.system,
        transport=ch.transport,
        endpoint=ch.endpoint,
        state=cast("State", ch.state),  # hub.channels makes only these three
        state_detail=ch.state_detail,
        last_received_at=c.last_received_at,
        last_error=c.last_error,
        last_error_at=c.last_error_at,
        counts=ChannelCountsOut(
            received=c.received,
            bytes=c.bytes,
            resends=c.resends,
            pending=c.pending,
            translated=c.translated,
            archived_only=c.archived_only,
            dead_lettered=c.dead_lettered,
            events=c.events,
            rows_dead_lettered=c.rows_failed,
            unclaimed_cells=c.unclaimed_cells,
            ack_aa=c.ack_aa,
            ack_ae=c.ack_ae,
            ack_ar=c.ack_ar,
        ),
        on_topic=ch.on_topic,
        rate_per_minute=ch.rate_per_minute,
        received_last_hour=ch.received_per_minute,
        dead_lettered_last_hour=ch.dead_lettered_per_minute,
    )


@router.get(
    "/channels",
    summary="Channels: each source over each transport, its state, counts and last hour",
    responses={http.HTTP_503_SERVICE_UNAVAILABLE: {"description": "Channel counts are not wired"}},
)
async def list_channels(services: ServicesDep) -> ChannelsOut:
    if services.channels is None:
        raise HTTPException(http.HTTP_503_SERVICE_UNAVAILABLE, "channel counts are not available in this app")
    found = await services.channels()
    return ChannelsOut(items=[channel_out(c) for c in found], generated_at=services.clock.now())
