"""GET /availability: how many devices of a type are ready now, and where (emergency dispatch).

- `GET /availability?type=呼吸机` (substring of the device name or model) and/or `category=6854`:
  per department, devices ready now, on loan, under repair, calibration due, otherwise
  unavailable; totals; the emergency pool's size and ready devices.
- `GET /availability/devices?...`: the devices themselves, with their class and pool flag.

"Now" is the injected clock's; a device whose calibration validity ended before today (site
zone) is not ready. See projections.assets.availability for the classes and the pool configuration.

Department scope: a scoped key (`--department D`) sees only devices whose home department is
D (code or name), in both the summary (its department's row, and totals over it) and the
device list; asking for another department gives an empty page. Finding ready devices across
the hospital, the emergency pool included, takes an unscoped key.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import TYPE_CHECKING, Annotated, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field

from hub.api.deps import ConnDep  # noqa: TC001  (FastAPI resolves annotations at runtime)
from hub.api.params import IsoDate, Offset
from hub.api.routes.asset_models import ClockDep, site_today
from hub.api.scope import ScopeDep  # noqa: TC001
from projections.assets import availability as avail
from projections.assets.queries import names_of
from projections.device_health.queries import open_warnings_of

if TYPE_CHECKING:
    from sqlalchemy import Connection

router = APIRouter(prefix="/availability", tags=["availability"])

MAX_PAGE = 500
ClassQ = Literal["ready", "on_loan", "under_repair", "calibration_due", "unavailable"]
TypeQ = Annotated[
    str | None, Query(alias="type", min_length=1, max_length=100, description="Substring of name or model")
]
CategoryQ = Annotated[str | None, Query(max_length=64, description="Category code, exact (e.g. 6854)")]
OnQ = Annotated[IsoDate | None, Query(description="Judge calibration validity on this day (default: today)")]


class _Out(BaseModel):
    model_config = ConfigDict(frozen=True)


class DepartmentAvailability(_Out):
    """Devices of the asked type in one department (its home department; loans count at home)."""

    department_code: str | None
    department_name: str | None
    ready: int = Field(description="In use or idle, not under repair, not lent elsewhere, calibration valid")
    on_loan: int = Field(description="Lent to another department")
    under_repair: int
    calibration_due: int = Field(description="Serviceable but calibration failed or expired")
    unavailable: int = Field(description="Sealed, awaiting acceptance, unknown status...")
    total: int
    pool: int = Field(description="Devices of the emergency pool here")
    pool_ready: int = Field(description="Emergency pool devices ready now")


class AvailabilityTotals(_Out):
    ready: int
    on_loan: int
    under_repair: int
    calibration_due: int
    unavailable: int
    total: int
    pool: int
    pool_ready: int


class AvailabilityOut(_Out):
    """Per department (most ready first) and in total."""

    type: str | None
    category: str | None
    as_of: date
    totals: AvailabilityTotals
    items: list[DepartmentAvailability]
    total: int = Field(description="Departments listed")
    limit: int
    offset: int


class DeviceOut(_Out):
    asset_id: str
    name: str | None
    model: str | None
    category_code: str | None
    department_code: str | None
    department_name: str | None
    location: str | None
    status: str | None
    availability: ClassQ
    pool: bool = Field(description="In the emergency pool")
    ready_until: date | None = Field(description="Ready only until this day (calibration validity)")
    loan_borrower_code: str | None
    loan_borrower_name: str | None
    loan_due_at: datetime | None
    early_warning: bool = Field(
        default=False,
        description="An early warning from the device's telemetry is open (see /devices/health)",
    )
    early_warnings: list[str] = Field(
        default_factory=list, description="The open warnings' rules (battery-fade, pm-overdue...)"
    )


class DevicePage(_Out):
    as_of: date
    items: list[DeviceOut]
    total: int
    limit: int
    offset: int


@router.get("", response_model=AvailabilityOut)
def read_availability(
    conn: ConnDep,
    clock: ClockDep,
    scope: ScopeDep,
    *,
    device_type: TypeQ = None,
    category: CategoryQ = None,
    on: OnQ = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = MAX_PAGE,
    offset: Offset = 0,
) -> AvailabilityOut:
    """Devices of a type (and/or category) by department: ready now, on loan, under repair..."""
    today = on or site_today(clock.now())
    depts = [
        d
        for d in avail.summary(conn, device_type=device_type, category=category, today=today)
        if scope.sees(d["department_code"], d["department_name"])
    ]
    keys = (*avail.CLASSES, "total", "pool", "pool_ready")
    totals = AvailabilityTotals(**{k: sum(d[k] for d in depts) for k in keys})
    return AvailabilityOut(
        type=device_type,
        category=category,
        as_of=today,
        totals=totals,
        items=[DepartmentAvailability.model_validate(d) for d in depts[offset : offset + limit]],
        total=len(depts),
        limit=limit,
        offset=offset,
    )


@router.get("/devices", response_model=DevicePage)
def read_devices(
    conn: ConnDep,
    clock: ClockDep,
    scope: ScopeDep,
    *,
    device_type: TypeQ = None,
    category: CategoryQ = None,
    department: Annotated[str | None, Query(description="Home department code or name")] = None,
    availability: Annotated[ClassQ | None, Query(description="Only devices in this class")] = None,
    pool: Annotated[bool | None, Query(description="Only emergency pool devices (or only others)")] = None,
    on: OnQ = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
    offset: Offset = 0,
) -> DevicePage:
    """The devices of a type, by department then asset id, with class as of today and pool flag."""
    today = on or site_today(clock.now())
    department, reachable = scope.department_filter(department)
    if not reachable:
        return DevicePage(as_of=today, items=[], total=0, limit=limit, offset=offset)
    rows, total = avail.devices(
        conn,
        device_type=device_type,
        category=category,
        department=department,
        klass=availability,
        pool=pool,
        today=today,
        limit=limit,
        offset=offset,
    )
    warned = _open_warnings(conn, [r["asset_id"] for r in rows])
    return DevicePage(
        as_of=today,
        items=[
            DeviceOut.model_validate(
                r
                | {
                    "early_warning": bool(warned.get(r["asset_id"])),
                    "early_warnings": warned.get(r["asset_id"], []),
                }
            )
            for r in rows
        ],
        total=total,
        limit=limit,
        offset=offset,
    )


def _open_warnings(conn: Connection, asset_ids: list[str]) -> dict[str, list[str]]:
    """Per golden id: the rules of its device's open early warnings, by any id its telemetry used."""
    names = names_of(conn, asset_ids)
    out: dict[str, list[str]] = {}
    for name, found in open_warnings_of(conn, list(names)).items():
        rules = out.setdefault(names[name], [])
        rules += [w["rule_id"] for w in found if w["rule_id"] not in rules]
    return out
