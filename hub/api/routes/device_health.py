"""Device health: telemetry per device and early warnings.

- `GET /devices/health?department=&warned=true`: devices that report telemetry, by department,
  with their latest figures (operating hours, power-on cycles, battery capacity and cycles) and
  open early warnings (rule, reason, evidence); `asset_id` is the golden record when the registry
  knows the device, else null (`provisional`: telemetry kept under the device's own identifier).
- `GET /devices/warnings?state=open|cleared|all&category=&department=`: early warnings, newest first.
- `GET /assets/{asset_id}/telemetry?from=&to=&limit=`: the device's raw telemetry records, newest
  first, with alarms, error codes and every coded metric (MDC code, value, unit); any id of the
  device, including one only its telemetry knows. Raw records are kept for the retention window
  (HUB_TELEMETRY_RAW_DAYS before the device's latest day; `raw_since` says where they start);
- `GET /assets/{asset_id}/telemetry/series?metric=&from=&to=&grain=hour|day|auto`: metrics (a
  figure such as `battery_pct`, `alarm_count`, `usage_hours`, or a coded metric's code) in
  site-local hour or day buckets (count, min, max, mean, sum, last) over any range: older days
  from the rollups, the raw window folded the same way.

Department scope: a scoped key sees the devices and warnings of its department (the telemetry's
department, else the registry's); another department's device answers 404.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING, Annotated, Literal

from fastapi import APIRouter, HTTPException, Path, Query
from pydantic import BaseModel, ConfigDict, Field

from adapters.namespaces import eui64
from hub.api.deps import ConnDep, ZoneDep  # noqa: TC001  (FastAPI resolves annotations at runtime)
from hub.api.params import IsoDate, Offset  # noqa: TC001
from hub.api.scope import ScopeDep  # noqa: TC001
from projections.assets.queries import names_of, resolve_asset_id
from projections.device_health.queries import (
    device_health,
    devices_named,
    list_warnings,
    raw_since,
    telemetry_of,
    telemetry_series,
)
from schemas._base import Identifier
from schemas.ids import asset_id_for

if TYPE_CHECKING:
    from sqlalchemy import Connection

    from hub.api.scope import Scope

router = APIRouter(tags=["device health"])

NOT_FOUND = 404
MAX_PAGE = 500
UNPROCESSABLE = 422
MAX_HOUR_DAYS = 92  # hour buckets over at most a quarter (2,208 a metric)
AUTO_HOUR_DAYS = 7  # grain=auto: hours up to a week, days beyond
DEFAULT_SERIES_DAYS = 90
MAX_SERIES_DAYS = 3660
DEFAULT_METRICS = ("battery_pct", "alarm_count", "usage_hours")
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
    raw_since: datetime | None = Field(
        default=None, description="The earliest raw record kept; older ones are in /telemetry/series only"
    )


class BucketOut(_Out):
    bucket: datetime = Field(description="The site-local hour's or day's start")
    label: str = Field(description="That start in site time: YYYY-MM-DD, or YYYY-MM-DD HH:00 by hour")
    count: int
    min: float
    max: float
    mean: float
    sum: float
    last: float
    last_at: datetime


class SeriesOut(_Out):
    metric: str
    unit: str | None
    buckets: list[BucketOut]


class TelemetrySeries(_Out):
    asset_id: str
    grain: Literal["hour", "day"]
    start: date = Field(alias="from")
    end: date = Field(alias="to")
    series: list[SeriesOut]

    model_config = ConfigDict(frozen=True, populate_by_name=True)


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
        asset_id=asset_id, items=[TelemetryOut.model_validate(r) for r in rows], total=len(rows),
        raw_since=raw_since(conn, names),
    )  # fmt: skip


@router.get(
    "/assets/{asset_id}/telemetry/series",
    response_model=TelemetrySeries,
    response_model_by_alias=True,
    responses={NOT_FOUND: {"description": "No device (in the caller's scope) has this id"}},
)
def read_telemetry_series(
    conn: ConnDep,
    scope: ScopeDep,
    zone: ZoneDep,
    asset_id: Annotated[str, Path(max_length=64)],
    *,
    metric: Annotated[
        list[str] | None,
        Query(max_length=20, description="Metrics (repeat); default battery_pct, alarm_count, usage_hours"),
    ] = None,
    start: Annotated[IsoDate | None, Query(alias="from", description="First local date, included")] = None,
    end: Annotated[
        IsoDate | None,
        Query(alias="to", description="Last local date, included; default the latest record's"),
    ] = None,
    days: Annotated[
        int, Query(ge=1, le=MAX_SERIES_DAYS, description="Without `from`: this many days ending on `to`")
    ] = DEFAULT_SERIES_DAYS,
    grain: Annotated[
        Literal["hour", "day", "auto"],
        Query(description=f"auto: hours up to {AUTO_HOUR_DAYS} days, else days"),
    ] = "auto",
) -> TelemetrySeries:
    """The device's metrics in hour or day buckets over any range (rollups for old days)."""
    names = _names(conn, scope, asset_id)
    if names is None:
        raise HTTPException(NOT_FOUND, f"no device {asset_id!r}")
    if end is None:
        # the latest record's day; a registered asset with no telemetry yet: today
        latest = max((d["last_at"] for d in devices_named(conn, names)), default=datetime.now(UTC))
        end = latest.astimezone(zone).date()
    if start is None:
        start = end - timedelta(days=days - 1)
    span = (end - start).days + 1
    if span < 1 or span > MAX_SERIES_DAYS:
        raise HTTPException(UNPROCESSABLE, f"from..to must be 1 to {MAX_SERIES_DAYS} days")
    chosen: Literal["hour", "day"] = (
        ("hour" if span <= AUTO_HOUR_DAYS else "day") if grain == "auto" else grain
    )
    if chosen == "hour" and span > MAX_HOUR_DAYS:
        raise HTTPException(UNPROCESSABLE, f"grain=hour covers at most {MAX_HOUR_DAYS} days")
    lo = datetime.combine(start, time(), tzinfo=zone).astimezone(UTC)
    hi = datetime.combine(end + timedelta(days=1), time(), tzinfo=zone).astimezone(UTC)
    found = telemetry_series(
        conn, names, metrics=list(metric or DEFAULT_METRICS), start=lo, end=hi, grain=chosen,
        tz=zone,  # type: ignore[arg-type]
    )  # fmt: skip
    shape = "%Y-%m-%d %H:00" if chosen == "hour" else "%Y-%m-%d"
    for s in found:
        for b in s["buckets"]:
            b["label"] = b["bucket"].astimezone(zone).strftime(shape)
    return TelemetrySeries(
        asset_id=asset_id, grain=chosen, start=start, end=end,
        series=[SeriesOut.model_validate(s) for s in found],
    )  # fmt: skip


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
