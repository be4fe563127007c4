"""Work-order domain: a repair or maintenance job from request to closure. Subject = work-order id."""

from __future__ import annotations

from decimal import Decimal
from enum import StrEnum
from typing import Literal
from uuid import UUID

from pydantic import Field

from schemas._base import DeptRef, HubModel, Identifier, Money, NonEmptyStr
from schemas.envelope import EventBase


class Priority(StrEnum):
    URGENT = "urgent"
    HIGH = "high"
    NORMAL = "normal"
    LOW = "low"


class Part(HubModel):
    code: str | None = None
    name: NonEmptyStr
    quantity: Decimal = Field(gt=0)
    cost: Money | None = None


class RequestedPayload(HubModel):
    asset: Identifier
    reporting_department: DeptRef
    symptom: NonEmptyStr
    priority: Priority = Priority.NORMAL
    channel: Literal["scan", "oa", "phone", "api", "telemetry", "other"] = "oa"
    requested_by: str | None = None


class RequestCorrectedPayload(HubModel):
    """The request `corrects` names, as it should have read: a retry after a mapping fix found what
    the first translation left unknown (an OA 报修科室 the mapping did not know). `previous` is what
    was published; the work-order read model takes `request` in its place (reporting department)."""

    corrects: UUID
    request: RequestedPayload
    previous: RequestedPayload


class ReportAddedPayload(HubModel):
    """Another report of the fault an open work order is already about (scan-to-report merges it).

    The work order's lifecycle is not changed: the report adds a reporter, a symptom and a note."""

    asset: Identifier
    reporting_department: DeptRef
    symptom: NonEmptyStr
    note: str | None = Field(default=None, max_length=500)
    channel: Literal["scan", "oa", "phone", "api", "other"] = "scan"
    reported_by: str | None = None


class ApprovedPayload(HubModel):
    amount: Money | None = None
    approver: str | None = None
    level: int = Field(default=1, ge=1)


class RejectedPayload(HubModel):
    approver: str | None = None
    level: int = Field(default=1, ge=1)
    reason: str | None = None


class AssignedPayload(HubModel):
    engineer: NonEmptyStr
    team: str | None = None


class StartedPayload(HubModel):
    engineer: str | None = None


class OnHoldPayload(HubModel):
    reason: str | None = None


class CompletedPayload(HubModel):
    resolution: str | None = None
    parts: list[Part] = Field(default_factory=list)
    labour_hours: Decimal | None = None
    cost: Money | None = None
    downtime_minutes: int | None = Field(default=None, ge=0)


class ClosedPayload(HubModel):
    closed_by: str | None = None


class CancelledPayload(HubModel):
    reason: str | None = None


class WorkOrderRequested(EventBase):
    type: Literal["workorder.requested"] = "workorder.requested"
    schema_version: Literal[1] = 1
    payload: RequestedPayload


class WorkOrderRequestCorrected(EventBase):
    """A correction of a `workorder.requested`: read models take `request` in place of what
    `corrects` said (same work order: the subject)."""

    type: Literal["workorder.request_corrected"] = "workorder.request_corrected"
    schema_version: Literal[1] = 1
    payload: RequestCorrectedPayload


class WorkOrderReportAdded(EventBase):
    type: Literal["workorder.report_added"] = "workorder.report_added"
    schema_version: Literal[1] = 1
    payload: ReportAddedPayload


class WorkOrderApproved(EventBase):
    type: Literal["workorder.approved"] = "workorder.approved"
    schema_version: Literal[1] = 1
    payload: ApprovedPayload


class WorkOrderRejected(EventBase):
    type: Literal["workorder.rejected"] = "workorder.rejected"
    schema_version: Literal[1] = 1
    payload: RejectedPayload


class WorkOrderAssigned(EventBase):
    type: Literal["workorder.assigned"] = "workorder.assigned"
    schema_version: Literal[1] = 1
    payload: AssignedPayload


class WorkOrderStarted(EventBase):
    type: Literal["workorder.started"] = "workorder.started"
    schema_version: Literal[1] = 1
    payload: StartedPayload


class WorkOrderOnHold(EventBase):
    type: Literal["workorder.on_hold"] = "workorder.on_hold"
    schema_version: Literal[1] = 1
    payload: OnHoldPayload


class WorkOrderCompleted(EventBase):
    type: Literal["workorder.completed"] = "workorder.completed"
    schema_version: Literal[1] = 1
    payload: CompletedPayload


class WorkOrderClosed(EventBase):
    type: Literal["workorder.closed"] = "workorder.closed"
    schema_version: Literal[1] = 1
    payload: ClosedPayload


class WorkOrderCancelled(EventBase):
    type: Literal["workorder.cancelled"] = "workorder.cancelled"
    schema_version: Literal[1] = 1
    payload: CancelledPayload


WORK_ORDER_EVENTS = (
    WorkOrderRequested,
    WorkOrderApproved,
    WorkOrderRejected,
    WorkOrderAssigned,
    WorkOrderStarted,
    WorkOrderOnHold,
    WorkOrderCompleted,
    WorkOrderClosed,
    WorkOrderCancelled,
    WorkOrderReportAdded,
    WorkOrderRequestCorrected,
)
