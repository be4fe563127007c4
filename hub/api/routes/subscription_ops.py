"""What an operator does to a webhook subscription besides creating it (hub.delivery.webhooks.log).

    GET  /subscriptions/{id}/deliveries        every POST attempt, newest first (paged): event id,
                                               attempt number, time, HTTP status, latency, error
    POST /subscriptions/{id}/replay?from=T     deliver once more the events recorded since T (202)
    GET  /subscriptions/{id}/replays           the replays asked for, with their progress
    POST /subscriptions/{id}/rotate-secret     a new signing secret (shown once); the old one keeps
                                               signing beside it for `overlap_hours`

Same rules as /subscriptions: the subscribe permission, the whole hospital, a key sees only the
subscriptions it created (admin: all). Replays and rotations are recorded on the audit ledger.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Annotated, Literal

from fastapi import APIRouter, Query
from fastapi import status as http
from pydantic import BaseModel, Field

from hub.api.deps import BusDep, ClockDep, ServicesDep, SubscriptionsDep  # noqa: TC001  (read at runtime)
from hub.api.params import IsoAwareDateTime, Offset  # noqa: TC001
from hub.api.routes.subscriptions import SubscriptionId, _visible
from hub.api.scope import ScopeDep, whole_hospital
from hub.api.security import AuditDep  # noqa: TC001
from hub.delivery.webhooks import DeliveryLog, Replay, replay_positions

router = APIRouter(
    prefix="/subscriptions", tags=["webhooks"], dependencies=[whole_hospital("webhook subscriptions")]
)


class AttemptOut(BaseModel):
    """One POST attempt. `status_code` is null when no answer came (timeout, refused connection)."""

    id: int
    event_id: str | None
    event_type: str | None
    topic: str
    partition: int
    offset: int
    attempt: int = Field(description="1 for the first try of this event, 2 for its first retry, ...")
    at: datetime
    status_code: int | None
    latency_ms: float
    outcome: Literal["delivered", "failed"]
    error: str | None
    replay_id: str | None = Field(description="set when the attempt belongs to a replay")


class AttemptPage(BaseModel):
    items: list[AttemptOut]
    total: int
    limit: int
    offset: int


class ReplayOut(BaseModel):
    id: str
    subscription_id: str
    from_time: datetime = Field(serialization_alias="from")
    requested_by: str
    created_at: datetime
    state: Literal["pending", "running", "done", "failed"]
    delivered: int
    remaining: int = Field(description="records of the range not yet read (events and others)")
    error: str | None
    finished_at: datetime | None


class RotatedOut(BaseModel):
    secret: str = Field(description="The new signing secret, shown only now")
    previous_valid_until: datetime | None = Field(
        description="Until then both signatures are sent: X-Hub-Signature-256: sha256=<new>, sha256=<old>"
    )


def _replay_out(replay: Replay) -> ReplayOut:
    remaining = sum(max(0, end - nxt) for parts in replay.positions.values() for nxt, end in parts.values())
    return ReplayOut(
        id=replay.id,
        subscription_id=replay.subscription_id,
        from_time=replay.from_time,
        requested_by=replay.requested_by,
        created_at=replay.created_at,
        state=replay.state,
        delivered=replay.delivered,
        remaining=remaining,
        error=replay.error,
        finished_at=replay.finished_at,
    )


@router.get("/{subscription_id}/deliveries", summary="The delivery log: every attempt, newest first")
async def list_deliveries(
    subscription_id: SubscriptionId,
    store: SubscriptionsDep,
    scope: ScopeDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Offset = 0,
) -> AttemptPage:
    sub = _visible(scope.principal, await asyncio.to_thread(store.get, subscription_id))
    rows, total = await asyncio.to_thread(
        DeliveryLog(store.engine).attempts, sub.id, limit=limit, offset=offset
    )
    items = [
        AttemptOut(
            id=row_id,
            event_id=a.event_id,
            event_type=a.event_type,
            topic=a.topic,
            partition=a.partition,
            offset=a.offset,
            attempt=a.attempt,
            at=a.at,
            status_code=a.status_code,
            latency_ms=a.latency_ms,
            outcome=a.outcome,
            error=a.error,
            replay_id=a.replay_id,
        )
        for row_id, a in rows
    ]
    return AttemptPage(items=items, total=total, limit=limit, offset=offset)


@router.post(
    "/{subscription_id}/replay",
    status_code=http.HTTP_202_ACCEPTED,
    summary="Deliver again the events recorded since a time (up to now), in order per partition",
    response_model_by_alias=True,
)
async def replay(
    *,
    subscription_id: SubscriptionId,
    from_time: Annotated[
        IsoAwareDateTime,
        Query(alias="from", description="ISO 8601 with an offset, e.g. 2024-07-01T08:00:00+08:00"),
    ],
    store: SubscriptionsDep,
    bus: BusDep,
    services: ServicesDep,
    clock: ClockDep,
    audit: AuditDep,
) -> ReplayOut:
    sub = _visible(audit.principal, await asyncio.to_thread(store.get, subscription_id))
    await audit.record("subscriptions.replay", f"{sub.id}:{from_time.isoformat()}")
    positions = await replay_positions(bus, sub, services.topic_prefix, from_time)
    job = await asyncio.to_thread(
        DeliveryLog(store.engine).create_replay,
        sub.id,
        from_time,
        positions,
        audit.principal.key_id,
        clock.now(),
    )
    return _replay_out(job)


@router.get("/{subscription_id}/replays", summary="Replays of this subscription, newest first")
async def list_replays(
    subscription_id: SubscriptionId, store: SubscriptionsDep, scope: ScopeDep
) -> dict[str, list[ReplayOut]]:
    sub = _visible(scope.principal, await asyncio.to_thread(store.get, subscription_id))
    replays = await asyncio.to_thread(DeliveryLog(store.engine).replays, sub.id)
    return {"items": [_replay_out(r) for r in replays]}


@router.post(
    "/{subscription_id}/rotate-secret",
    summary="A new signing secret (shown once); the old one keeps signing during the overlap",
)
async def rotate_secret(
    *,
    subscription_id: SubscriptionId,
    store: SubscriptionsDep,
    services: ServicesDep,
    clock: ClockDep,
    audit: AuditDep,
    overlap_hours: Annotated[
        float | None,
        Query(
            ge=0,
            le=24 * 30,
            description="Hours the old secret still signs (default HUB_WEBHOOK_ROTATION_OVERLAP_H)",
        ),
    ] = None,
) -> RotatedOut:
    sub = _visible(audit.principal, await asyncio.to_thread(store.get, subscription_id))
    overlap = services.webhook_rotation_overlap if overlap_hours is None else timedelta(hours=overlap_hours)
    await audit.record("subscriptions.rotate_secret", sub.id)
    now = clock.now()
    secret = await asyncio.to_thread(store.rotate_secret, sub.id, overlap, now)
    return RotatedOut(secret=secret, previous_valid_until=now + overlap if overlap > timedelta(0) else None)
