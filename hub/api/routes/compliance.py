"""GET /compliance/due: calibrations, inspections, certificates and contracts due, or overdue.

"Today" is the site's calendar date at the injected clock's `now` (hub.api.routes.workorders.
get_clock), unless `as_of` names the date a report is for.

An obligation the hub only projected from a device's start of service (no calibration or
inspection of its kind on record, e.g. a legacy ledger's purchase date) is listed with
`projected: true` and concludes no notice until a real record confirms it; `projected=` filters.

What needs action (the console's default): `within=30d&overdue_within=90d`, overdue by at most
90 days plus due in the next 30; `groups` counts the whole selection per kind, overdue or not,
projected or confirmed. Without `overdue_within` every overdue obligation is listed, as before.

Department scope: a key created with `--department D` (a code or a name) sees only the
obligations of devices of D; asking for another department gives an empty page.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Query
from fastapi import status as http
from pydantic import BaseModel, ConfigDict, Field

from hub.api.deps import (
    ClockDep,  # noqa: TC001
    ConnDep,  # noqa: TC001
)
from hub.api.params import WINDOW_PATTERN, IsoDate, Offset, window_days
from hub.api.scope import ScopeDep  # noqa: TC001
from projections.compliance.queries import DueFilter, count_due_groups, list_due
from projections.compliance.rules import ComplianceConfig

router = APIRouter(prefix="/compliance", tags=["compliance"])

MAX_PAGE = 500
KindQ = Literal[
    "preventive_maintenance", "calibration", "electrical_safety", "contract", "warranty", "certificate"
]
_SITE_ZONE = ComplianceConfig().zone


class DueOut(BaseModel):
    """One obligation of one device and when it falls due."""

    model_config = ConfigDict(frozen=True)

    asset_id: str
    asset_name: str | None
    category_code: str | None
    category_name: str | None
    department_code: str | None
    department_name: str | None
    kind: str = Field(description="preventive_maintenance, calibration, electrical_safety, certificate...")
    ref: str | None = Field(description="Certificate or contract number")
    due_on: date
    days_left: int = Field(description="Days from the as-of date to the due date (negative: overdue)")
    overdue: bool
    basis: str = Field(description="What the due date comes from: calibrated, inspected, commissioned...")
    projected: bool = Field(
        description="True: the hub projected this date from a start of service (no calibration or"
        " inspection of the kind on record yet); listed for the department to confirm, never notified"
    )
    last_done_on: date | None
    last_result: str | None
    interval_months: int | None


class DueGroup(BaseModel):
    """How many obligations of the selection share a kind, an overdue state and a basis."""

    model_config = ConfigDict(frozen=True)

    kind: str
    overdue: bool
    projected: bool
    count: int


class DuePage(BaseModel):
    """One page of obligations, most overdue first."""

    model_config = ConfigDict(frozen=True)

    items: list[DueOut]
    total: int
    limit: int
    offset: int
    as_of: date = Field(description="The date the page is computed for")
    groups: list[DueGroup] = Field(
        default_factory=list, description="The whole selection counted per kind, overdue state and basis"
    )


@router.get("/due", response_model=DuePage)
def read_due(
    conn: ConnDep,
    clock: ClockDep,
    scope: ScopeDep,
    *,
    within: Annotated[
        str,
        Query(
            json_schema_extra={"pattern": WINDOW_PATTERN},
            description="Due within this many days: 30d, 2w or 30",
        ),
    ] = "30d",
    department: Annotated[str | None, Query(description="Department code or name, exact")] = None,
    kind: Annotated[KindQ | None, Query()] = None,
    overdue: Annotated[
        bool | None, Query(description="Only overdue (true) or only not overdue (false)")
    ] = None,
    projected: Annotated[
        bool | None,
        Query(description="Only dates the hub projected, to confirm (true), or only confirmed ones (false)"),
    ] = None,
    overdue_within: Annotated[
        str | None,
        Query(
            json_schema_extra={"pattern": WINDOW_PATTERN},
            description="Only obligations overdue by at most this long: 90d (default: however long)",
        ),
    ] = None,
    as_of: Annotated[IsoDate | None, Query(description="Report date (default: today at the site)")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
    offset: Offset = 0,
) -> DuePage:
    """Obligations due within the window (overdue ones included unless `overdue=false`)."""
    try:
        days = window_days(within)
        overdue_days = window_days(overdue_within) if overdue_within is not None else None
    except ValueError as exc:
        raise HTTPException(http.HTTP_422_UNPROCESSABLE_CONTENT, detail=str(exc)) from None
    today = as_of if as_of is not None else _today(clock.now())
    department, reachable = scope.department_filter(department)
    if not reachable:
        return DuePage(items=[], total=0, limit=limit, offset=offset, as_of=today)
    where = DueFilter(
        today=today,
        within_days=days,
        department=department,
        kind=kind,
        overdue=overdue,
        projected=projected,
        overdue_within_days=overdue_days,
    )
    rows, total = list_due(conn, where, limit=limit, offset=offset)
    return DuePage(
        items=[DueOut.model_validate(r) for r in rows],
        total=total,
        limit=limit,
        offset=offset,
        as_of=today,
        groups=[DueGroup.model_validate(g) for g in count_due_groups(conn, where)],
    )


def _today(now: datetime) -> date:
    return now.astimezone(_SITE_ZONE).date()
