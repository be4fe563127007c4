"""Derived events: facts the hub's projections conclude, published back to `derived.<domain>.v1`."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Literal

from pydantic import AwareDatetime, Field

from schemas._base import HubModel, Identifier, LocationRef, NonEmptyStr
from schemas.envelope import EventBase

ComplianceKind = Literal[
    "preventive_maintenance", "calibration", "electrical_safety", "contract", "warranty", "certificate"
]


class BelowMinimumPayload(HubModel):
    item_id: NonEmptyStr
    location: LocationRef
    on_hand: Decimal
    minimum: Decimal


class ReorderRequestedPayload(HubModel):
    item_id: NonEmptyStr
    location: LocationRef
    quantity: Decimal = Field(gt=0)
    supplier: str | None = None


class ComplianceDuePayload(HubModel):
    asset_id: NonEmptyStr
    kind: ComplianceKind
    due_on: date


class WorkOrderScheduledPayload(HubModel):
    asset_id: NonEmptyStr
    kind: ComplianceKind
    due_on: date


class SlaBreachedPayload(HubModel):
    workorder_id: NonEmptyStr
    kind: Literal["response", "resolution"]
    due_at: AwareDatetime
    escalation_level: int = Field(ge=1)


class IdentityConflictPayload(HubModel):
    identifier: Identifier
    asset_ids: list[str] = Field(min_length=2)


class InventoryBelowMinimum(EventBase):
    type: Literal["inventory.below_minimum"] = "inventory.below_minimum"
    schema_version: Literal[1] = 1
    payload: BelowMinimumPayload


class InventoryReorderRequested(EventBase):
    type: Literal["inventory.reorder_requested"] = "inventory.reorder_requested"
    schema_version: Literal[1] = 1
    payload: ReorderRequestedPayload


class ComplianceDue(EventBase):
    type: Literal["compliance.due"] = "compliance.due"
    schema_version: Literal[1] = 1
    payload: ComplianceDuePayload


class ComplianceOverdue(EventBase):
    type: Literal["compliance.overdue"] = "compliance.overdue"
    schema_version: Literal[1] = 1
    payload: ComplianceDuePayload


class WorkOrderScheduled(EventBase):
    type: Literal["workorder.scheduled"] = "workorder.scheduled"
    schema_version: Literal[1] = 1
    payload: WorkOrderScheduledPayload


class WorkOrderSlaBreached(EventBase):
    type: Literal["workorder.sla_breached"] = "workorder.sla_breached"
    schema_version: Literal[1] = 1
    payload: SlaBreachedPayload


class AssetIdentityConflict(EventBase):
    type: Literal["asset.identity_conflict"] = "asset.identity_conflict"
    schema_version: Literal[1] = 1
    payload: IdentityConflictPayload


DERIVED_EVENTS = (
    InventoryBelowMinimum,
    InventoryReorderRequested,
    ComplianceDue,
    ComplianceOverdue,
    WorkOrderScheduled,
    WorkOrderSlaBreached,
    AssetIdentityConflict,
)
