"""/energy: consumption by level and grain (CSV with `Accept: text/csv`), and anomalies.

`GET /energy/consumption?level=building&id=B&from=2024-06-01&to=2024-06-30&grain=day`: one row
per period and quantity, with the previous period, the same period a year before and the
intensity per m2 where the BMS mapping gives the level's area. Levels: campus, building, floor
(`<building>/<floor>`), zone, department (code or name), meter. Days and months are the site's.

`GET /energy/anomalies?from=&to=&zone=&kind=`: anomalies whose window overlaps [from, to), with
their evidence (baseline, observed, window, reason).

Department scope: a key created with `--department D` sees only the meters and anomalies of
zones mapped to D; another department's level gives an empty answer.
"""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Query

from hub.api.deps import ConnDep, EnergyAreasDep, ZoneDep  # noqa: TC001
from hub.api.params import IsoDate, Offset  # noqa: TC001  (FastAPI reads the annotations at runtime)
from hub.api.routes.energy_models import AnomalyOut, AnomalyPage, ConsumptionOut, ConsumptionPage
from hub.api.scope import ScopeDep  # noqa: TC001
from projections.energy.queries import consumption, list_anomalies

router = APIRouter(prefix="/energy", tags=["energy"])

MAX_DAYS = {"hour": 62, "day": 3660, "month": 3660}
UNPROCESSABLE = 422
AnomalyKind = Literal["base_load_leak", "surge", "simultaneous_heating_cooling", "stuck_meter", "gap"]


@router.get("/consumption", response_model=ConsumptionPage, response_model_by_alias=True)
def read_consumption(
    conn: ConnDep,
    scope: ScopeDep,
    zone: ZoneDep,
    areas: EnergyAreasDep,
    *,
    start: Annotated[IsoDate, Query(alias="from", description="First local date, included")],
    end: Annotated[IsoDate, Query(alias="to", description="Last local date, included")],
    level: Annotated[
        Literal["campus", "building", "floor", "zone", "department", "meter"],
        Query(description="Aggregation level"),
    ] = "campus",
    ident: Annotated[
        str | None,
        Query(alias="id", max_length=200, description="Building, building/floor, zone, department, meter"),
    ] = None,
    grain: Annotated[Literal["hour", "day", "month"], Query(description="Period length")] = "day",
    quantity: Annotated[
        str | None, Query(max_length=40, description="Only this quantity (e.g. water_m3)")
    ] = None,
) -> ConsumptionPage:
    """Consumption (or mean of instantaneous quantities) per period, with MoM/YoY and per m2."""
    if end < start or (end - start).days > MAX_DAYS[grain]:
        raise HTTPException(
            UNPROCESSABLE,
            f"`to` must be on or after `from`, at most {MAX_DAYS[grain]} days for grain={grain}",
        )
    if level != "campus" and ident is None:
        raise HTTPException(UNPROCESSABLE, f"level={level} needs an `id`")
    department, reachable = scope.department_filter(ident if level == "department" else None)
    items: list[ConsumptionOut] = []
    if reachable:
        area = areas().get((level, ident or ""))
        rows = consumption(conn, level=level, ident=ident, start=start, end=end, grain=grain, tz=zone,  # type: ignore[arg-type]
                           department=department, quantity=quantity,
                           area_m2=None if scope.scoped and level != "department" else area)  # fmt: skip
        items = [ConsumptionOut.model_validate(r) for r in rows]
    return ConsumptionPage(
        level=level, id=ident, grain=grain, start=start, end=end, items=items, total=len(items)
    )


@router.get("/anomalies", response_model=AnomalyPage)
def read_anomalies(
    conn: ConnDep,
    scope: ScopeDep,
    zone: ZoneDep,
    *,
    start: Annotated[IsoDate, Query(alias="from", description="First local date, included")],
    end: Annotated[IsoDate, Query(alias="to", description="Last local date, included")],
    zone_id: Annotated[str | None, Query(alias="zone", max_length=200, description="Zone id, exact")] = None,
    kind: Annotated[AnomalyKind | None, Query(description="Only this kind")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Offset = 0,
) -> AnomalyPage:
    """Anomalies whose window overlaps the local dates from..to, newest first, with evidence."""
    if end < start:
        raise HTTPException(UNPROCESSABLE, "`to` must be on or after `from`")
    lo = datetime.combine(start, time(), tzinfo=zone).astimezone(UTC)
    hi = datetime.combine(end + timedelta(days=1), time(), tzinfo=zone).astimezone(UTC)
    department, _ = scope.department_filter(None)
    rows, total = list_anomalies(conn, start=lo, end=hi, zone=zone_id, kind=kind, department=department,
                                 limit=limit, offset=offset)  # fmt: skip
    return AnomalyPage(items=[AnomalyOut.model_validate(dict(r)) for r in rows], total=total, limit=limit,
                       offset=offset)  # fmt: skip
