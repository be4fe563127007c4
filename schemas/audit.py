"""Audit events: reads of sensitive data through the API, published to `audit.access.v1`.

The hub chains them in its audit ledger like every canonical event, so "who looked at this raw
HL7 message, and when" is as tamper-evident as the facts themselves. They carry the API key's
id and role, never the key, and never a patient identifier: the resource is a raw reference,
a subject id or a device code.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from schemas._base import HubModel, NonEmptyStr
from schemas.envelope import EventBase

AccessOutcome = Literal["allowed", "denied"]


class AccessPayload(HubModel):
    key_id: NonEmptyStr  # the API key's public id ("anonymous" when authentication is off)
    role: NonEmptyStr
    department: str | None = None  # the key's department scope; None = whole hospital
    action: NonEmptyStr  # e.g. raw.read, raw.head, history.read, inventory.trace
    resource: NonEmptyStr  # e.g. hrp:3f1c..., asset/AST-..., a UDI or serial
    outcome: AccessOutcome
    method: NonEmptyStr
    path: NonEmptyStr
    client: str | None = None  # the caller's address as the API saw it
    purpose: str | None = Field(default=None, max_length=500)  # X-Hub-Purpose, when the caller gave one


class AccessRecorded(EventBase):
    type: Literal["audit.access_recorded"] = "audit.access_recorded"
    schema_version: Literal[1] = 1
    payload: AccessPayload


AUDIT_EVENTS = (AccessRecorded,)
