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
from html import escape
from typing import Annotated, Any, Literal
from urllib.parse import quote

from fastapi import APIRouter, HTTPException, Path, Query, Request
from fastapi import status as http
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, ConfigDict, Field

from hub.api.deps import (
    ClockDep,  # noqa: TC001  (FastAPI reads the annotations at runtime)
    ConnDep,  # noqa: TC001
    PublisherDep,  # noqa: TC001
    ServicesDep,  # noqa: TC001
)
from hub.api.params import Offset  # noqa: TC001
from hub.api.routes.console import HEADERS
from hub.api.scope import Scope, ScopeDep
from hub.api.security import get_principal
from hub.auth.roles import Permission, Principal, Role
from hub.delivery.ack_links import AckLinkError, LinkClaim
from projections.notifications.queries import STATES, Reader, State, get_notification, list_notifications
from schemas._base import SourceSystem
from schemas.envelope import Source
from schemas.notifications import NotificationRead, NotificationReadPayload

router = APIRouter(prefix="/notifications", tags=["notifications"])
PAGE_HEADERS = {**HEADERS, "Cache-Control": "no-store"}

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


class DeliveryOut(BaseModel):
    model_config = ConfigDict(frozen=True)

    channel: str = Field(description="The rule's channel name (never its URL)")
    level: int
    outcome: Literal["delivered", "failed"]
    attempts: int = Field(description="Posts made; a failure is retried with backoff before `failed`")
    status_code: int | None
    error: str | None
    at: datetime


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
    deliveries: list[DeliveryOut] = Field(description="Robot/webhook posts, per channel and level")
    delivery_failed: bool = Field(description="A channel's latest post failed after its retries")


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
    services: ServicesDep,
    publish: PublisherDep,
    clock: ClockDep,
    scope: Scope,
    notification_id: str,
    *,
    link: LinkClaim | None = None,
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
            role="link" if link is not None else p.role.value,
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


# -- the read receipt: by the recipient's key, or by a one-time link from a robot message -------

link_router = APIRouter(prefix="/notifications", tags=["notifications"])
PAGE_HEADERS = {**HEADERS, "Cache-Control": "no-store"}
"""Included without the API-key dependency: POST /ack checks the key itself when no `token` is
given (401/403 as everywhere), and a `token` is checked by hub.delivery.ack_links."""

TokenQ = Annotated[
    str | None,
    Query(max_length=300, description="One-time token of the link a robot/webhook message carried"),
]
_LINK_ERRORS = {
    "invalid": (http.HTTP_403_FORBIDDEN, "链接无效"),
    "expired": (http.HTTP_410_GONE, "链接已过期，请在控制台确认"),
    "used": (http.HTTP_410_GONE, "该链接已使用过"),
}


def _link_claim(
    services: ServicesDep, clock: ClockDep, notification_id: str, token: str, *, redeem: bool
) -> LinkClaim:
    links = services.ack_links
    if links is None:
        raise HTTPException(http.HTTP_404_NOT_FOUND, "acknowledgement links are not enabled")
    try:
        if redeem:
            return links.redeem(notification_id, token, clock.now())
        return links.check(notification_id, token, clock.now())
    except AckLinkError as exc:
        status, text = _LINK_ERRORS[exc.reason]
        raise HTTPException(status, text) from exc


def _page(title: str, body: str, status: int = 200) -> HTMLResponse:
    html = (
        '<!doctype html><html lang="zh-CN"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1"><link rel="icon" href="data:,">'
        f"<title>{escape(title)}</title></head><body><main><h1>{escape(title)}</h1>{body}</main></body></html>"
    )
    return HTMLResponse(html, status_code=status, headers=PAGE_HEADERS)


@link_router.get("/{notification_id}/ack", include_in_schema=False)
def acknowledge_page(
    services: ServicesDep, clock: ClockDep, notification_id: NotificationIdPath, token: TokenQ = None
) -> HTMLResponse:
    """The link's landing page: a confirm button (a link preview's GET acknowledges nothing)."""
    if token is None:
        return _page("确认通知", "<p>请从群消息中的链接打开。</p>", http.HTTP_401_UNAUTHORIZED)
    try:
        _link_claim(services, clock, notification_id, token, redeem=False)
    except HTTPException as exc:
        return _page("确认通知", f"<p>{escape(str(exc.detail))}</p>", exc.status_code)
    with services.engine.connect() as conn:
        row = get_notification(conn, notification_id)
    if row is None:
        return _page("确认通知", "<p>通知不存在</p>", http.HTTP_404_NOT_FOUND)
    action = f"/notifications/{quote(notification_id, safe='')}/ack?token={quote(token, safe='')}"
    return _page(
        str(row["title"]),
        f"<p>{escape(str(row['text']))}</p>"
        f'<form method="post" action="{escape(action)}"><button type="submit">确认已读</button></form>',
    )


@link_router.post(
    "/{notification_id}/ack",
    status_code=http.HTTP_202_ACCEPTED,
    response_model=ReadAccepted,
    responses={
        **_RESPONSES,
        http.HTTP_410_GONE: {"description": "The one-time link was used already, or has expired"},
    },
)
async def acknowledge(
    request: Request,
    services: ServicesDep,
    publish: PublisherDep,
    clock: ClockDep,
    *,
    notification_id: NotificationIdPath,
    token: TokenQ = None,
) -> Any:
    """The read receipt: publishes `notification.read` (escalation stops).

    With the caller's API key (any role that reads), for a notification in its scope; or, with no
    key, with the `token` of a one-time link a robot or webhook message carried (key id `link`,
    reader = the channel): usable once, until it expires."""
    if token is None:
        principal = await run_in_threadpool(get_principal, request, services.security)
        if not principal.can(Permission.READ):
            raise HTTPException(http.HTTP_403_FORBIDDEN, f"role {principal.role.value!r} may not read")
        return await _acknowledge(services, publish, clock, Scope(principal, services), notification_id)
    with services.engine.connect() as conn:
        if get_notification(conn, notification_id) is None:
            raise HTTPException(http.HTTP_404_NOT_FOUND, f"no notification {notification_id}")
    claim = await run_in_threadpool(_link_claim, services, clock, notification_id, token, redeem=True)
    link = Principal(key_id="link", role=Role.VIEWER, label=f"群消息链接（{claim.channel}）")
    accepted = await _acknowledge(
        services, publish, clock, Scope(link, services), notification_id, link=claim
    )
    if "text/html" in request.headers.get("accept", ""):
        return _page(
            "已确认", f"<p>已确认：{escape(notification_id)}，升级提醒已停止。</p>", http.HTTP_200_OK
        )
    return accepted
