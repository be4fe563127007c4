"""GET /workorders and GET /workorders/{id}: the work-order read model (lifecycle, SLA, approval, cost).

`sla_breached` is judged at the hub's clock's `now` (hub.api.deps.get_clock, re-exported here as
`get_clock`; the compliance and KPI routes read the same one).

Department scope: a key created with `--department D` (a code or a name) sees the work orders
D reported and those on D's devices (the asset's department); `department=` still filters by
the reporting department within that. Any other work order answers the same 404 as an unknown id.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Path, Query
from fastapi import status as http
from pydantic import BaseModel, ConfigDict, Field

from hub.api.deps import ClockDep, ConnDep, get_clock
from hub.api.params import IsoAwareDateTime, Offset  # noqa: TC001  (FastAPI reads the annotations at runtime)
from hub.api.scope import ScopeDep  # noqa: TC001
from projections.work_orders.queries import WorkOrderFilter, list_work_orders
from schemas.work_orders import Priority  # noqa: TC001

__all__ = ["ClockDep", "get_clock", "router"]

router = APIRouter(prefix="/workorders", tags=["work orders"])

MAX_PAGE = 500
StatusQ = Literal[
    "open", "requested", "approved", "assigned", "started", "on_hold",
    "completed", "closed", "cancelled", "rejected",
]  # fmt: skip
ApprovalQ = Literal["pending", "approved", "rejected", "not_required"]


class _Out(BaseModel):
    model_config = ConfigDict(frozen=True)


class WorkOrderOut(_Out):
    """One work order. Times are UTC; money is an exact decimal (a string in JSON)."""

    workorder_id: str
    status: str = Field(description="Furthest lifecycle state reached: requested ... closed / cancelled")
    status_at: datetime
    priority: str | None
    asset_id: str | None = Field(description="Hub asset id the request's identifier resolves to")
    asset_scheme: str | None = Field(description="Identifier scheme the request named (hrp.card, oa.no...)")
    asset_value: str | None
    asset_name: str | None
    asset_category_code: str | None
    asset_category_name: str | None
    asset_department_code: str | None
    asset_department_name: str | None
    department_code: str | None = Field(description="Reporting department")
    department_name: str | None
    symptom: str | None
    channel: str | None
    requested_by: str | None
    requested_at: datetime | None
    site: str
    approval_required: bool = Field(description="Amount at or above the approval threshold")
    approval_state: str = Field(description="pending, approved, rejected or not_required")
    approval_amount: Decimal | None
    approval_level: int | None
    approver: str | None
    approved_at: datetime | None
    rejected_at: datetime | None
    completed_unapproved: bool = Field(description="Completed although approval was required and not given")
    assigned_at: datetime | None
    engineer: str | None
    team: str | None
    started_at: datetime | None
    completed_at: datetime | None
    closed_at: datetime | None
    cancelled_at: datetime | None
    resolution: str | None
    labour_hours: Decimal | None
    parts_cost: Decimal | None
    cost: Decimal | None = Field(description="Total repair cost (parts included)")
    currency: str | None
    hold_minutes: int = Field(description="Time spent on hold (closed holds)")
    on_hold: bool
    downtime_minutes: int | None
    response_due_at: datetime | None = Field(description="Level-1 response deadline (on-hold time excluded)")
    responded_at: datetime | None
    resolution_due_at: datetime | None
    resolved_at: datetime | None
    response_breach_level: int = Field(description="Highest response escalation level concluded (0: none)")
    resolution_breach_level: int
    sla_breached: bool = Field(description="A breach concluded, or a running clock past its due time now")
    last_event_at: datetime
    event_count: int


class WorkOrderPage(_Out):
    """One page of work orders, newest request first."""

    items: list[WorkOrderOut]
    total: int = Field(description="Work orders matching the filters, over all pages")
    limit: int
    offset: int


class TimelineEntryOut(_Out):
    """One event of a work order, as its source reported it."""

    event_id: str
    event_type: str
    occurred_at: datetime
    recorded_at: datetime
    source_system: str
    raw_ref: str | None = Field(description="Raw archive reference of the message it came from")
    actor: str | None = Field(description="Requester, approver, engineer or closer")
    team: str | None
    note: str | None = Field(description="Symptom, reason or resolution")
    level: int | None = Field(description="Approval level")
    amount: Decimal | None
    parts_amount: Decimal | None
    currency: str | None
    labour_hours: Decimal | None
    downtime_minutes: int | None


class BreachOut(_Out):
    """An SLA breach concluded (and published as workorder.sla_breached)."""

    kind: Literal["response", "resolution"]
    level: int
    due_at: datetime
    event_id: str


class ReportOut(_Out):
    """A further report of the same fault, merged into this work order (`workorder.report_added`)."""

    event_id: str
    occurred_at: datetime
    department_code: str | None
    department_name: str | None
    symptom: str
    note: str | None
    channel: str | None
    reported_by: str | None


class WorkOrderDetailOut(WorkOrderOut):
    """A work order with every event it is made of (oldest first), its breaches and further reports."""

    timeline: list[TimelineEntryOut]
    breaches: list[BreachOut]
    reports: list[ReportOut] = Field(description="Further reports merged into this one (scan-to-report)")


@router.get("", response_model=WorkOrderPage)
def read_work_orders(
    conn: ConnDep,
    clock: ClockDep,
    scope: ScopeDep,
    *,
    status: Annotated[StatusQ | None, Query(description="Lifecycle state, or `open`")] = None,
    priority: Annotated[Priority | None, Query()] = None,
    department: Annotated[str | None, Query(description="Reporting department code or name")] = None,
    asset: Annotated[str | None, Query(description="Hub asset id or any identifier value")] = None,
    sla_breached: Annotated[bool | None, Query(description="Breached (or not) as of now")] = None,
    approval_state: Annotated[ApprovalQ | None, Query()] = None,
    requested_from: Annotated[
        IsoAwareDateTime | None,
        Query(alias="from", description="Requested at or after (ISO 8601 with offset)"),
    ] = None,
    requested_to: Annotated[
        IsoAwareDateTime | None, Query(alias="to", description="Requested before")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
    offset: Offset = 0,
) -> WorkOrderPage:
    """Work orders matching every given filter, newest request first."""
    where = WorkOrderFilter(
        status=status,
        priority=priority.value if priority is not None else None,
        department=department,
        asset=asset,
        sla_breached=sla_breached,
        approval_state=approval_state,
        requested_from=requested_from,
        requested_to=requested_to,
        scope=scope.department,
    )
    rows, total = list_work_orders(conn, where, now=clock.now(), limit=limit, offset=offset)
    return WorkOrderPage(
        items=[WorkOrderOut.model_validate(r) for r in rows], total=total, limit=limit, offset=offset
    )


@router.get(
    "/{workorder_id}",
    response_model=WorkOrderDetailOut,
    responses={http.HTTP_404_NOT_FOUND: {"description": "No work order with this id"}},
)
def read_work_order(
    conn: ConnDep, scope: ScopeDep, workorder_id: Annotated[str, Path(max_length=64)]
) -> WorkOrderDetailOut:
    """One work order with its timeline and SLA breaches."""
    row = scope.work_order(conn, workorder_id)
    if row is None:
        raise HTTPException(http.HTTP_404_NOT_FOUND, detail=f"no work order with id {workorder_id!r}")
    return WorkOrderDetailOut.model_validate(row)
