"""GET /notifications (the caller's inbox) and POST /notifications/{id}/ack (the read receipt).

The inbox is what the `notifications` read model (projections.notifications) addressed to the
caller's key: its role, its label (the person an on-call list names) and its department (a
department recipient, or the department of the device or work order a notification is about),
at every escalation level reached so far. `view=all` lists every notification in the caller's
scope instead (a supervisor's overview). Department scope applies to both: a scoped key sees
only its department's notifications, and acknowledging another's answers 404 like an unknown id.

The read receipt is published as `notification.read` (who: key id, label, role; when: the
clock's now), so it is on the log and audited like any fact; the projection stops escalating
when it applies it. Acknowledging twice records two receipts; the first one is when it was read.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Path, Query
from fastapi import status as http
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict, Field

from hub.api.deps import (
    ClockDep,  # noqa: TC001  (FastAPI reads the annotations at runtime)
    ConnDep,  # noqa: TC001
    PublisherDep,  # noqa: TC001
    ServicesDep,  # noqa: TC001
)
from hub.api.params import Offset  # noqa: TC001
from hub.api.scope import ScopeDep  # noqa: TC001
from projections.notifications.queries import STATES, Reader, State, get_notification, list_notifications
from schemas._base import SourceSystem
from schemas.envelope import Source
from schemas.notifications import NotificationRead, NotificationReadPayload

router = APIRouter(prefix="/notifications", tags=["notifications"])

MAX_PAGE = 500
NotificationIdPath = Annotated[str, Path(max_length=40, description="A notification id (NTF-...)")]


class RecipientOut(BaseModel):
    model_config = ConfigDict(frozen=True)

    level: int = Field(description="0: the rule's recipients; n: added by escalation step n")
    kind: str = Field(description="role, department, person or subject_department")
    value: str


class ReceiptOut(BaseModel):
    model_config = ConfigDict(frozen=True)

    key_id: str
    reader: str | None = Field(description="The key's label: the person")
    role: str
    read_at: datetime


class NotificationOut(BaseModel):
    """One notification: what it says, to whom, and where it stands."""

    model_config = ConfigDict(frozen=True)

    notification_id: str
    rule: str
    title: str
    text: str
    trigger_type: str
    trigger_event_id: str
    subject: str = Field(description="What it is about: a work order, a device or an item id")
    department_code: str | None
    department_name: str | None
    state: str = Field(description="held (quiet hours), unread, escalated, read or expired")
    level: int = Field(description="Escalation levels reached")
    urgent: bool
    occurred_at: datetime
    deliver_at: datetime
    sent_at: datetime | None
    escalated_at: datetime | None
    expired_at: datetime | None
    recipients: list[RecipientOut]
    receipts: list[ReceiptOut]


class NotificationPage(BaseModel):
    model_config = ConfigDict(frozen=True)

    items: list[NotificationOut]
    total: int
    limit: int
    offset: int


class ReadAccepted(BaseModel):
    """The read receipt, as published (`notification.read`)."""

    model_config = ConfigDict(frozen=True)

    notification_id: str
    event_id: str
    read_at: datetime
    reader: str | None
    key_id: str


def _out(row: dict[str, object]) -> NotificationOut:
    return NotificationOut.model_validate({k: row.get(k) for k in NotificationOut.model_fields})


@router.get("", response_model=NotificationPage)
def read_notifications(
    conn: ConnDep,
    scope: ScopeDep,
    *,
    state: Annotated[list[State] | None, Query(description="Only these states (repeatable)")] = None,
    view: Annotated[Literal["inbox", "all"], Query(description="inbox: addressed to this key")] = "inbox",
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
    offset: Offset = 0,
) -> NotificationPage:
    """The caller's notifications, newest first."""
    p = scope.principal
    reader = Reader(role=p.role.value, person=p.label or None, department=p.department)
    items, total = list_notifications(
        conn,
        reader,
        scope_department=scope.department,
        inbox=view == "inbox",
        states=state or STATES,
        limit=limit,
        offset=offset,
    )
    return NotificationPage(items=[_out(i) for i in items], total=total, limit=limit, offset=offset)


def _visible(services: ServicesDep, scope: ScopeDep, notification_id: str) -> dict[str, object] | None:
    with services.engine.connect() as conn:
        row = get_notification(conn, notification_id)
    if row is None or not scope.sees(row["department_code"], row["department_name"]):
        return None
    return row


async def _acknowledge(
    services: ServicesDep, publish: PublisherDep, clock: ClockDep, scope: ScopeDep, notification_id: str
) -> ReadAccepted:
    row = await run_in_threadpool(_visible, services, scope, notification_id)
    if row is None:
        raise HTTPException(http.HTTP_404_NOT_FOUND, f"no notification {notification_id}")
    now = clock.now()
    p = scope.principal
    event_id = uuid.uuid4()  # a person's statement: each acknowledgement is its own fact
    event = NotificationRead(
        event_id=event_id,
        occurred_at=now,
        recorded_at=now,
        source=Source(
            system=SourceSystem.HUB,
            site=services.site,
            message_id=f"notification.read:{event_id}",
            adapter_version="hub/api/1",
        ),
        subject=notification_id,
        correlation_id=str(row["subject"]),
        payload=NotificationReadPayload(
            notification_id=notification_id,
            key_id=p.key_id,
            reader=p.label or None,
            role=p.role.value,
            department=p.department,
        ),
    )
    await publish(event)
    return ReadAccepted(
        notification_id=notification_id,
        event_id=str(event_id),
        read_at=now,
        reader=p.label or None,
        key_id=p.key_id,
    )


_RESPONSES: dict[int | str, dict[str, Any]] = {
    http.HTTP_404_NOT_FOUND: {"description": "No such notification in the caller's scope"}
}


@router.post(
    "/{notification_id}/ack",
    status_code=http.HTTP_202_ACCEPTED,
    response_model=ReadAccepted,
    responses=_RESPONSES,
)
async def acknowledge(
    services: ServicesDep,
    publish: PublisherDep,
    clock: ClockDep,
    scope: ScopeDep,
    notification_id: NotificationIdPath,
) -> ReadAccepted:
    """The read receipt: publishes `notification.read` for the caller's key (escalation stops)."""
    return await _acknowledge(services, publish, clock, scope, notification_id)


@router.post(
    "/{notification_id}/read",
    status_code=http.HTTP_202_ACCEPTED,
    response_model=ReadAccepted,
    responses=_RESPONSES,
)
async def mark_read(
    services: ServicesDep,
    publish: PublisherDep,
    clock: ClockDep,
    scope: ScopeDep,
    notification_id: NotificationIdPath,
) -> ReadAccepted:
    """The same read receipt as `/ack`, under the name the console uses."""
    return await _acknowledge(services, publish, clock, scope, notification_id)
