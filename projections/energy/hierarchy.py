"""The meter/zone hierarchy as the read model knows it, and one level's consumption by child.

`zones`: every place that has readings (building, floor, zone, department, the registry's place
text), with its meters, their quantities and last reading; what a drill-down walks.
`breakdown`: the consumption of the children of a level over local dates from..to (both
included), one row per child and quantity: campus -> buildings -> floors -> zones -> meters, and
department -> zones. Sums for consumption, means for instantaneous quantities.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select

from projections.energy.queries import Level, _level_filter, _scope_filter
from projections.energy.tables import daily, places, series
from schemas.facility import CONSUMPTION, UNIT_OF

if TYPE_CHECKING:
    from datetime import date

    from sqlalchemy import Connection

CHILD: dict[str, str] = {
    "campus": "building",
    "building": "floor",
    "floor": "zone",
    "zone": "meter",
    "department": "zone",
}


def zones(conn: Connection, *, department: str | None = None) -> list[dict[str, Any]]:
    """One row per place with readings (a meter with no zone: zone None), with its meters."""
    s = series.c
    p = places.c
    rows = conn.execute(
        select(
            s.building,
            s.floor,
            s.zone,
            s.dept_code,
            s.dept_name,
            p.place,
            s.meter_id,
            s.quantity,
            s.unit,
            s.last_at,
        )
        .join_from(series, places, s.place_key == p.place_key)
        .where(*_scope_filter(series, department))
        .order_by(s.building, s.floor, s.zone, s.meter_id, s.quantity)
    ).all()
    out: dict[tuple[Any, ...], dict[str, Any]] = {}
    for building, floor, zone, code, name, place, meter, quantity, unit, last_at in rows:
        key = (building, floor, zone, code, name, place)
        row = out.setdefault(key, {
            "building": building, "floor": floor, "zone": zone, "dept_code": code, "dept_name": name,
            "place": place, "meters": [], "last_at": last_at,
        })  # fmt: skip
        row["meters"].append({"meter_id": meter, "quantity": quantity, "unit": unit, "last_at": last_at})
        row["last_at"] = max(row["last_at"], last_at)
    return list(out.values())


def breakdown(
    conn: Connection,
    *,
    level: Level,
    ident: str | None,
    start: date,
    end: date,
    department: str | None = None,
    quantity: str | None = None,
) -> list[dict[str, Any]]:
    """The children of (level, ident) with their consumption over start..end (local dates)."""
    c = daily.c
    child = CHILD.get(level)
    if child is None:
        return []
    column: Any = {"building": c.building, "zone": c.zone, "meter": c.meter_id}.get(child)
    if child == "floor":
        column = c.building + "/" + func.coalesce(c.floor, "")
    where = [*_level_filter(daily, level, ident), *_scope_filter(daily, department),
             c.day >= start.isoformat(), c.day <= end.isoformat()]  # fmt: skip
    if quantity is not None:
        where.append(c.quantity == quantity)
    rows = conn.execute(
        select(column, c.quantity, func.sum(c.total), func.sum(c.samples))
        .where(*where)
        .group_by(column, c.quantity)
        .order_by(column, c.quantity)
    ).all()
    out = []
    for key, qty, total, samples in rows:
        summed = qty in CONSUMPTION
        value = float(total) if summed else float(total) / max(int(samples), 1)
        out.append({
            "level": child, "id": key, "quantity": qty, "unit": UNIT_OF.get(qty, ""),
            "aggregate": "sum" if summed else "mean", "value": round(value, 6), "samples": int(samples),
        })  # fmt: skip
    return out
