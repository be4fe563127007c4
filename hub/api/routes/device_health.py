"""Device health: telemetry per device and early warnings.

- `GET /devices/health?department=&warned=true`: devices that report telemetry, by department,
  with their latest figures (operating hours, power-on cycles, battery capacity and cycles) and
  open early warnings (rule, reason, evidence); `asset_id` is the golden record when the registry
  knows the device, else null (`provisional`: telemetry kept under the device's own identifier).
- `GET /devices/warnings?state=open|cleared|all&category=&department=`: early warnings, newest first.
- `GET /assets/{asset_id}/telemetry?from=&to=&limit=`: the device's telemetry records, newest
  first, with alarms, error codes and every coded metric (MDC code, value, unit); any id of the
  device, including one only its telemetry knows.

Department scope: a scoped key sees the devices and warnings of its department (the telemetry's
department, else the registry's); another department's device answers 404.
"""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from typing import TYPE_CHECKING, Annotated, Literal

from fastapi import APIRouter, HTTPException, Path, Query
from pydantic import BaseModel, ConfigDict, Field

from adapters.namespaces import eui64
from hub.api.deps import ConnDep, ZoneDep  # noqa: TC001  (FastAPI resolves annotations at runtime)
from hub.api.params import IsoDate, Offset  # noqa: TC001
from hub.api.scope import ScopeDep  # noqa: TC001
from projections.assets.queries import names_of, resolve_asset_id
from projections.device_health.queries import device_health, devices_named, list_warnings, telemetry_of
from schemas._base import Identifier
from schemas.ids import asset_id_for

if TYPE_CHECKING:
    from sqlalchemy import Connection

    from hub.api.scope import Scope

router = APIRouter(tags=["device health"])

NOT_FOUND = 404
MAX_PAGE = 500
Category = Literal["battery", "errors", "usage", "alarms"]


class _Out(BaseModel):
    model_config = ConfigDict(frozen=True)


class WarningOut(_Out):
    warning_id: str
    rule_id: str
    category: str
    asset_id: str
    subject: str = Field(description="The device's own id (minted from its identifier)")
    device_type: str | None
    dept_code: str | None
    dept_name: str | None
    severity: str
    reason: str
    baseline: float | None
    observed: float | None
    unit: str
    samples: int
    window_start: datetime
    window_end: datetime
    workorder_id: str | None = Field(description="The work order the warning filed, if its rule asks for one")
    cleared_at: datetime | None


class DeviceHealthOut(_Out):
    subject: str
    asset_id: str | None = Field(
        description="The golden record; null while the registry does not know the device"
    )
    provisional: bool
    scheme: str
    value: str
    device_type: str | None
    dept_code: str | None
    dept_name: str | None
    last_at: datetime
    usage_hours: float | None
    power_on_cycles: int | None
    battery_pct: float | None
    battery_cycles: int | None
    warnings: list[WarningOut]


class DeviceHealthPage(_Out):
    items: list[DeviceHealthOut]
    total: int
    limit: int
    offset: int


class WarningPage(_Out):
    items: list[WarningOut]
    total: int
    limit: int
    offset: int


class CodeOut(_Out):
    code: str
    text: str | None = None
    priority: str | None = None


class MetricOut(_Out):
    code: str
    system: str
    value: float | None
    unit: str | None
    text: str | None


class TelemetryOut(_Out):
    event_id: str
    subject: str
    at: datetime
    usage_hours: float | None
    power_on_cycles: int | None
    battery_pct: float | None
    battery_cycles: int | None
    alarm_count: int
    alarms: list[CodeOut]
    errors: list[CodeOut]
    metrics: list[MetricOut]
    source_system: str


class TelemetryPage(_Out):
    asset_id: str
    items: list[TelemetryOut]
    total: int


@router.get("/devices/health", response_model=DeviceHealthPage)
def read_device_health(
    conn: ConnDep,
    scope: ScopeDep,
    *,
    department: Annotated[str | None, Query(max_length=200, description="Department code or name")] = None,
    warned: Annotated[bool, Query(description="Only devices with an open early warning")] = False,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 100,
    offset: Offset = 0,
) -> DeviceHealthPage:
    """Devices reporting telemetry, with their latest figures and open early warnings."""
    department, reachable = scope.department_filter(department)
    if not reachable:
        return DeviceHealthPage(items=[], total=0, limit=limit, offset=offset)
    rows, total = device_health(conn, department=department, warned_only=warned, limit=limit, offset=offset)
    items = []
    for row in rows:
        golden = resolve_asset_id(conn, row["subject"])
        items.append(
            DeviceHealthOut.model_validate(
                row | {"asset_id": golden, "provisional": golden is None,
                       "warnings": [WarningOut.model_validate(w) for w in row["warnings"]]}
            )
        )  # fmt: skip
    return DeviceHealthPage(items=items, total=total, limit=limit, offset=offset)


@router.get("/devices/warnings", response_model=WarningPage)
def read_warnings(
    conn: ConnDep,
    scope: ScopeDep,
    *,
    state: Annotated[Literal["open", "cleared", "all"], Query(description="Open, cleared or all")] = "open",
    category: Annotated[Category | None, Query(description="Only this rule category")] = None,
    department: Annotated[str | None, Query(max_length=200, description="Department code or name")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 100,
    offset: Offset = 0,
) -> WarningPage:
    """Early warnings with their evidence, newest first."""
    department, reachable = scope.department_filter(department)
    if not reachable:
        return WarningPage(items=[], total=0, limit=limit, offset=offset)
    rows, total = list_warnings(
        conn, department=department, state=state, category=category, limit=limit, offset=offset
    )
    return WarningPage(
        items=[WarningOut.model_validate(r) for r in rows], total=total, limit=limit, offset=offset
    )


@router.get(
    "/assets/{asset_id}/telemetry",
    response_model=TelemetryPage,
    responses={NOT_FOUND: {"description": "No device (in the caller's scope) has this id"}},
)
def read_telemetry(
    conn: ConnDep,
    scope: ScopeDep,
    zone: ZoneDep,
    asset_id: Annotated[str, Path(max_length=64)],
    *,
    start: Annotated[IsoDate | None, Query(alias="from", description="First local date, included")] = None,
    end: Annotated[IsoDate | None, Query(alias="to", description="Last local date, included")] = None,
    limit: Annotated[int, Query(ge=1, le=5000)] = 500,
) -> TelemetryPage:
    """The device's telemetry records, newest first (any id of the device)."""
    names = _names(conn, scope, asset_id)
    if names is None:
        raise HTTPException(NOT_FOUND, f"no device {asset_id!r}")
    lo = None if start is None else datetime.combine(start, time(), tzinfo=zone).astimezone(UTC)
    hi = (
        None
        if end is None
        else datetime.combine(end + timedelta(days=1), time(), tzinfo=zone).astimezone(UTC)
    )
    rows = telemetry_of(conn, names, start=lo, end=hi, limit=limit)
    return TelemetryPage(
        asset_id=asset_id, items=[TelemetryOut.model_validate(r) for r in rows], total=len(rows)
    )


def _names(conn: Connection, scope: Scope, asset_id: str) -> list[str] | None:
    """The ids the device's telemetry may be keyed by, or None when the caller may not see it."""
    golden = resolve_asset_id(conn, asset_id)
    if golden is not None:
        if scope.asset(conn, golden) is None:
            return None
        return sorted(names_of(conn, [golden]))
    wanted = [asset_id]
    eui = eui64(asset_id)  # an EUI-64 names its device too (the id PCD gateways print)
    if eui is not None:
        wanted.append(asset_id_for(Identifier(scheme="eui64", value=eui)))
    found = devices_named(conn, wanted)
    visible = [d for d in found if scope.sees(d["dept_code"], d["dept_name"])]
    return [d["subject"] for d in visible] or None
