"""GET /kpis: uptime, MTTR, MTBF, repairs, maintenance cost and utilisation per device or group.

Definitions are in projections.work_orders.kpis. The period defaults to the 365 days before the injected
clock's `now` (hub.api.routes.workorders.get_clock).

`department=` (a code or a name) keeps the devices of that department. A key created with
`--department D` always gets D's devices only (per device, per category within D, or D's own
row); asking for another department gives an empty page.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Query
from fastapi import status as http
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from hub.api.deps import (
    ClockDep,  # noqa: TC001
    ConnDep,  # noqa: TC001
)
from hub.api.params import IsoAwareDateTime, Offset  # noqa: TC001  (FastAPI reads the annotations at runtime)
from hub.api.scope import ScopeDep  # noqa: TC001
from projections.work_orders.kpis import compute_kpis

router = APIRouter(prefix="/kpis", tags=["kpis"])

MAX_PAGE = 1000
DEFAULT_PERIOD = timedelta(days=365)


class KpiOut(BaseModel):
    """KPIs of one device, category or department over the period."""

    model_config = ConfigDict(frozen=True)

    group_by: Literal["device", "category", "department"]
    key: str | None = Field(description="Asset id, category code or department code (else its name)")
    name: str | None
    asset_id: str | None
    category_code: str | None
    department_code: str | None
    devices: int
    period_hours: float
    downtime_hours: float
    uptime_pct: float
    repairs: int = Field(description="Work orders requested in the period, cancelled ones excepted")
    completed_repairs: int
    mttr_hours: float | None = Field(description="Mean time to repair of repairs completed in the period")
    mtbf_hours: float | None = Field(description="Operating time per repair")
    maintenance_cost: Decimal
    currency: str
    usage_hours: float
    utilisation_pct: float
    uses: int


class KpiPage(BaseModel):
    """One page of KPI rows, ordered by their key."""

    model_config = ConfigDict(frozen=True)

    items: list[KpiOut]
    total: int
    limit: int
    offset: int
    period_from: AwareDatetime
    period_to: AwareDatetime


@router.get("", response_model=KpiPage)
def read_kpis(
    conn: ConnDep,
    clock: ClockDep,
    scope: ScopeDep,
    *,
    group_by: Annotated[Literal["device", "category", "department"], Query()] = "category",
    department: Annotated[
        str | None, Query(description="Only devices of this department (code or name)")
    ] = None,
    period_from: Annotated[IsoAwareDateTime | None, Query(alias="from", description="Period start")] = None,
    period_to: Annotated[
        IsoAwareDateTime | None, Query(alias="to", description="Period end (default now)")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 100,
    offset: Offset = 0,
) -> KpiPage:
    """KPIs per device, category or department over [from, to) (default: the last 365 days)."""
    now = clock.now()
    end = period_to or now
    start = period_from or end - DEFAULT_PERIOD
    if start >= end:
        raise HTTPException(http.HTTP_422_UNPROCESSABLE_CONTENT, detail="`from` must be before `to`")
    department, reachable = scope.department_filter(department)
    rows = (
        compute_kpis(conn, group_by=group_by, start=start, end=end, now=now, department=department)
        if reachable
        else []
    )
    return KpiPage(
        items=[KpiOut.model_validate(r) for r in rows[offset : offset + limit]],
        total=len(rows),
        limit=limit,
        offset=offset,
        period_from=start,
        period_to=end,
    )
