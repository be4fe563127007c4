"""Per record kind: which event it is, its subject, and its payload, read through a RecordView.

Work-order kinds are keyed by the OA work-order number (工单号), loans by the asset. An approval
record is `workorder.approved` or `workorder.rejected` by its result field. Approval thresholds are
not checked here: an approval may sit in another export, and that is the read model's judgement.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from adapters.oa.values import parse_hours, parse_minutes
from schemas._base import DeptRef, HubModel, SourceSystem
from schemas.assets import AssetLoaned, AssetReturned, LoanedPayload, ReturnedPayload
from schemas.ids import asset_id_for, workorder_id_for
from schemas.work_orders import (
    ApprovedPayload,
    AssignedPayload,
    CancelledPayload,
    ClosedPayload,
    CompletedPayload,
    OnHoldPayload,
    Priority,
    RejectedPayload,
    RequestedPayload,
    StartedPayload,
    WorkOrderApproved,
    WorkOrderAssigned,
    WorkOrderCancelled,
    WorkOrderClosed,
    WorkOrderCompleted,
    WorkOrderOnHold,
    WorkOrderRejected,
    WorkOrderRequested,
    WorkOrderStarted,
)

if TYPE_CHECKING:
    from collections.abc import Callable
    from datetime import datetime

    from adapters.oa.fields import RecordView
    from adapters.oa.mapping import KindName
    from schemas.envelope import EventBase


@dataclass(frozen=True, slots=True)
class Draft:
    """An event before its envelope: class, subject, payload and the record's own time."""

    event_class: type[EventBase]
    subject: str
    payload: HubModel
    occurred_at: datetime | None

    @property
    def event_type(self) -> str:
        return _EVENT_TYPES[self.event_class]


def build(view: RecordView) -> Draft | None:
    """The draft event for the view's record, or None with the reasons in `view.problems`."""
    view.check_required()
    occurred = view.time("time")
    draft = _BUILDERS[view.kind](view, occurred)
    return None if view.problems or draft is None else draft


def _work_order(view: RecordView) -> str | None:
    number = view.need("work_order_no")
    return workorder_id_for(SourceSystem.OA.value, number) if number else None


def _request(view: RecordView, occurred: datetime | None) -> Draft | None:
    subject = _work_order(view)
    asset = view.asset()
    department = view.department("department")
    symptom = view.need("symptom")
    priority = view.code("priority", view.mapping.priorities)
    channel = view.code("channel", view.mapping.channels)
    if subject is None or asset is None or symptom is None:
        return None
    payload = RequestedPayload(
        asset=asset,
        reporting_department=department or DeptRef(),
        symptom=symptom,
        priority=priority or Priority.NORMAL,
        channel=channel or "oa",
        requested_by=view.text("requested_by"),
    )
    return Draft(WorkOrderRequested, subject, payload, occurred)


def _approval(view: RecordView, occurred: datetime | None) -> Draft | None:
    subject = _work_order(view)
    if view.raw("result") is None:
        view.missing("result")
    result = view.code("result", view.mapping.approval_results)
    approver, level = view.text("approver"), view.level()
    if subject is None or result is None:
        return None
    if result == "rejected":
        rejected = RejectedPayload(approver=approver, level=level, reason=view.text("reason"))
        return Draft(WorkOrderRejected, subject, rejected, occurred)
    approved = ApprovedPayload(amount=view.money("amount"), approver=approver, level=level)
    return Draft(WorkOrderApproved, subject, approved, occurred)


def _assignment(view: RecordView, occurred: datetime | None) -> Draft | None:
    subject, engineer = _work_order(view), view.need("engineer")
    if subject is None or engineer is None:
        return None
    return Draft(
        WorkOrderAssigned, subject, AssignedPayload(engineer=engineer, team=view.text("team")), occurred
    )


def _start(view: RecordView, occurred: datetime | None) -> Draft | None:
    subject = _work_order(view)
    payload = StartedPayload(engineer=view.text("engineer"))
    return Draft(WorkOrderStarted, subject, payload, occurred) if subject else None


def _hold(view: RecordView, occurred: datetime | None) -> Draft | None:
    subject = _work_order(view)
    return (
        Draft(WorkOrderOnHold, subject, OnHoldPayload(reason=view.text("reason")), occurred)
        if subject
        else None
    )


def _completion(view: RecordView, occurred: datetime | None) -> Draft | None:
    subject = _work_order(view)
    payload = CompletedPayload(
        resolution=view.text("resolution"),
        parts=view.parts(),
        labour_hours=view.parsed("labour_hours", parse_hours, "invalid_number"),
        cost=view.money("cost"),
        downtime_minutes=view.parsed("downtime_minutes", parse_minutes, "invalid_number"),
    )
    return Draft(WorkOrderCompleted, subject, payload, occurred) if subject else None


def _closure(view: RecordView, occurred: datetime | None) -> Draft | None:
    subject = _work_order(view)
    return (
        Draft(WorkOrderClosed, subject, ClosedPayload(closed_by=view.text("closed_by")), occurred)
        if subject
        else None
    )


def _cancellation(view: RecordView, occurred: datetime | None) -> Draft | None:
    subject = _work_order(view)
    payload = CancelledPayload(reason=view.text("reason"))
    return Draft(WorkOrderCancelled, subject, payload, occurred) if subject else None


def _loan(view: RecordView, occurred: datetime | None) -> Draft | None:
    loan_id, asset = view.need("loan_id"), view.asset()
    borrower = view.department("borrower_department")
    if borrower is None:
        view.missing("borrower_department")
    lender = view.department("lender_department")
    due = view.time("due_at", end_of_day=True)
    if loan_id is None or asset is None or borrower is None:
        return None
    payload = LoanedPayload(
        loan_id=loan_id,
        borrower_department=borrower,
        lender_department=lender,
        responsible_person=view.text("responsible_person"),
        due_at=due,
    )
    return Draft(AssetLoaned, asset_id_for(asset), payload, occurred)


def _return(view: RecordView, occurred: datetime | None) -> Draft | None:
    loan_id, asset = view.need("loan_id"), view.asset()
    if loan_id is None or asset is None:
        return None
    if occurred is None:
        if not any(p.field == "time" for p in view.problems):
            view.missing("time")  # the return time is the payload's returned_at, not optional
        return None
    payload = ReturnedPayload(loan_id=loan_id, returned_at=occurred, condition=view.text("condition"))
    return Draft(AssetReturned, asset_id_for(asset), payload, occurred)


_EVENT_TYPES: dict[type[EventBase], str] = {
    cls: str(cls.model_fields["type"].default)
    for cls in (
        WorkOrderRequested, WorkOrderApproved, WorkOrderRejected, WorkOrderAssigned, WorkOrderStarted,
        WorkOrderOnHold, WorkOrderCompleted, WorkOrderClosed, WorkOrderCancelled, AssetLoaned, AssetReturned,
    )
}  # fmt: skip

_BUILDERS: dict[KindName, Callable[[RecordView, datetime | None], Draft | None]] = {
    "request": _request,
    "approval": _approval,
    "assignment": _assignment,
    "start": _start,
    "hold": _hold,
    "completion": _completion,
    "closure": _closure,
    "cancellation": _cancellation,
    "loan": _loan,
    "return": _return,
}
