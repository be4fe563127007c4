"""Notification events: who was told what, who read it, and who was told next when nobody did.

`notification.sent`, `.escalated`, `.expired` and `.delivered` are derived (the `notifications`
projection and the delivery service conclude them, on `derived.notification.v1`);
`notification.read` is a fact a person states through the API (the read receipt, on
`canonical.notification.v1`). Every one has the notification id as its subject and the
triggering event's subject (a work order, a device, an item) as its correlation id, so a
notification's whole story is one key. Recipients are roles, departments and named people
(an on-call list expanded when the rule fired); never a patient.
"""

from __future__ import annotations

from typing import Literal

from pydantic import AwareDatetime, Field

from schemas._base import HubModel, NonEmptyStr
from schemas.envelope import EventBase

RecipientKind = Literal["role", "department", "person", "subject_department"]


class Recipient(HubModel):
    """One addressee: a role (`admin`), a department (code or name), a named person (an API key's
    label), or `subject_department` (whichever department the subject belongs to when read)."""

    kind: RecipientKind
    value: str = ""


class NotificationSentPayload(HubModel):
    notification_id: NonEmptyStr
    rule: NonEmptyStr
    trigger_event_id: NonEmptyStr
    trigger_type: NonEmptyStr
    title: NonEmptyStr
    text: NonEmptyStr
    recipients: list[Recipient] = Field(min_length=1)
    channels: list[str] = Field(default_factory=list)
    urgent: bool = False


class NotificationEscalatedPayload(HubModel):
    notification_id: NonEmptyStr
    rule: NonEmptyStr
    level: int = Field(ge=1)
    recipients: list[Recipient] = Field(min_length=1)
    channels: list[str] = Field(default_factory=list)
    unread_since: AwareDatetime
    title: str | None = None  # the notification's, so a channel can repeat it without the read model
    text: str | None = None


class NotificationExpiredPayload(HubModel):
    notification_id: NonEmptyStr
    rule: NonEmptyStr
    level: int = Field(ge=0)


class NotificationDeliveredPayload(HubModel):
    notification_id: NonEmptyStr
    channel: NonEmptyStr  # the channel's name in the rules, never its URL (it holds a key)
    level: int = Field(ge=0)
    outcome: Literal["delivered", "failed"]
    status_code: int | None = None
    error: str | None = None
    attempts: int = Field(default=1, ge=1)  # posts made (retried with backoff before `failed`)


class NotificationReadPayload(HubModel):
    notification_id: NonEmptyStr
    key_id: NonEmptyStr  # the reader's API key id ("link" for a one-time link)
    reader: str | None = None  # the key's label: the person, as the on-call list names them
    role: NonEmptyStr
    department: str | None = None


class NotificationSent(EventBase):
    type: Literal["notification.sent"] = "notification.sent"
    schema_version: Literal[1] = 1
    payload: NotificationSentPayload


class NotificationEscalated(EventBase):
    type: Literal["notification.escalated"] = "notification.escalated"
    schema_version: Literal[1] = 1
    payload: NotificationEscalatedPayload


class NotificationExpired(EventBase):
    type: Literal["notification.expired"] = "notification.expired"
    schema_version: Literal[1] = 1
    payload: NotificationExpiredPayload


class NotificationDelivered(EventBase):
    type: Literal["notification.delivered"] = "notification.delivered"
    schema_version: Literal[1] = 1
    payload: NotificationDeliveredPayload


class NotificationRead(EventBase):
    type: Literal["notification.read"] = "notification.read"
    schema_version: Literal[1] = 1
    payload: NotificationReadPayload


DERIVED_NOTIFICATION_EVENTS = (
    NotificationSent,
    NotificationEscalated,
    NotificationExpired,
    NotificationDelivered,
)
NOTIFICATION_EVENTS = (NotificationRead,)
