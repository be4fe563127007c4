"""/energy: consumption by level and grain (CSV with `Accept: text/csv`), and anomalies.

`GET /energy/consumption?level=building&id=B&from=2024-06-01&to=2024-06-30&grain=day`: one row
per period and quantity, with the previous period, the same period a year before and the
intensity per m2 where the BMS mapping gives the level's area. Levels: campus, building, floor
(`<building>/<floor>`), zone, department (code or name), meter. Days and months are the site's.

`GET /energy/zones`: the meter/zone hierarchy (building, floor, zone, department, the registry's
place and its FHIR Location, area, beds, meters). `GET /energy/breakdown?level=&id=&from=&to=`:
the level's children (campus -> buildings -> floors -> zones -> meters; department -> zones)
with their consumption over the dates, for a drill-down.

`GET /energy/anomalies?from=&to=&zone=&kind=`: anomalies whose window overlaps [from, to), with
their evidence (baseline, observed, window, reason).

Department scope: a key created with `--department D` sees only the meters and anomalies of
zones mapped to D; another department's level gives an empty answer.
"""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Query

from hub.api.deps import ConnDep, EnergySiteDep, ZoneDep  # noqa: TC001
from hub.api.fhir.places import department_id, place_id
from hub.api.params import IsoDate, Offset  # noqa: TC001  (FastAPI reads the annotations at runtime)
from hub.api.routes.energy_models import (
    AnomalyOut,
    AnomalyPage,
    BreakdownOut,
    BreakdownPage,
    ConsumptionOut,
    ConsumptionPage,
    ZoneOut,
    ZonePage,
)
from hub.api.scope import ScopeDep  # noqa: TC001
from projections.energy.figures import bed_days
from projections.energy.hierarchy import breakdown, zones
from projections.energy.queries import consumption, list_anomalies

router = APIRouter(prefix="/energy", tags=["energy"])
MAX_ZONES = 1000  # zones a page of GET /energy/zones holds at most

MAX_DAYS = {"hour": 62, "day": 3660, "month": 3660}
UNPROCESSABLE = 422
AnomalyKind = Literal["base_load_leak", "surge", "simultaneous_heating_cooling", "stuck_meter", "gap"]


@router.get("/consumption", response_model=ConsumptionPage, response_model_by_alias=True)
def read_consumption(
    conn: ConnDep,
    scope: ScopeDep,
    zone: ZoneDep,
    site: EnergySiteDep,
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
        # A scoped key sees its department's figures, not a building's it shares with others.
        shown = not scope.scoped or level == "department"
        area = site.areas.get((level, ident or "")) if shown else None
        rows = consumption(conn, level=level, ident=ident, start=start, end=end, grain=grain, tz=zone,  # type: ignore[arg-type]
                           department=department, quantity=quantity, area_m2=area)  # fmt: skip
        for row in rows:
            beds = bed_days(site, level, ident or "", row["period"], grain) if shown else None
            if beds is not None:
                row["bed_days"], row["bed_days_basis"] = beds
                summed = row["aggregate"] == "sum"
                row["per_bed_day"] = round(row["value"] / beds[0], 6) if summed and beds[0] else None
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


@router.get("/zones", response_model=ZonePage)
def read_zones(
    conn: ConnDep,
    scope: ScopeDep,
    site: EnergySiteDep,
    *,
    # The default is the largest page: a client that does not page (the console) gets every zone
    # of a campus up to that size, as before paging.
    limit: Annotated[int, Query(ge=1, le=MAX_ZONES)] = MAX_ZONES,
    offset: Offset = 0,
) -> ZonePage:
    """The meter/zone hierarchy: every place with readings, its department, registry place and
    meters, by building, floor and zone; `total` counts them all, `limit`/`offset` page them."""
    department, _ = scope.department_filter(None)
    found = zones(conn, department=department)
    items = []
    for row in found[offset : offset + limit]:
        code, place, zone_id = row["dept_code"], row["place"], row["zone"]
        location = None
        if code:
            location = f"Location/{place_id(code, place) if place else department_id(code)}"
        items.append(ZoneOut.model_validate({
            **row,
            "building_name": site.names.get(("building", row["building"])),
            "location": location,
            "area_m2": site.areas.get(("zone", zone_id)) if zone_id else None,
            "beds": site.beds.get(("zone", zone_id)) if zone_id else None,
        }))  # fmt: skip
    return ZonePage(items=items, total=len(found), limit=limit, offset=offset)


@router.get("/breakdown", response_model=BreakdownPage, response_model_by_alias=True)
def read_breakdown(
    conn: ConnDep,
    scope: ScopeDep,
    site: EnergySiteDep,
    *,
    start: Annotated[IsoDate, Query(alias="from", description="First local date, included")],
    end: Annotated[IsoDate, Query(alias="to", description="Last local date, included")],
    level: Annotated[
        Literal["campus", "building", "floor", "zone", "department"], Query(description="The parent level")
    ] = "campus",
    ident: Annotated[str | None, Query(alias="id", max_length=200, description="The parent's id")] = None,
    quantity: Annotated[str | None, Query(max_length=40, description="Only this quantity")] = None,
) -> BreakdownPage:
    """The level's children with their consumption over from..to: a drill-down's next step."""
    if end < start or (end - start).days > MAX_DAYS["day"]:
        raise HTTPException(UNPROCESSABLE, f"`to` must be on or after `from`, at most {MAX_DAYS['day']} days")
    if level != "campus" and ident is None:
        raise HTTPException(UNPROCESSABLE, f"level={level} needs an `id`")
    department, reachable = scope.department_filter(ident if level == "department" else None)
    items: list[BreakdownOut] = []
    if reachable:
        for row in breakdown(conn, level=level, ident=ident, start=start, end=end, department=department,
                             quantity=quantity):  # fmt: skip
            area = None if scope.scoped else site.areas.get((row["level"], row["id"] or ""))
            summed = row["aggregate"] == "sum"
            items.append(BreakdownOut.model_validate({
                **row, "name": site.names.get((row["level"], row["id"] or "")), "area_m2": area,
                "per_m2": round(row["value"] / area, 6) if summed and area else None,
            }))  # fmt: skip
    return BreakdownPage(level=level, id=ident, start=start, end=end, items=items, total=len(items))
