"""The meter/zone hierarchy as the read model knows it, and one level's consumption by child.

`zones`: every place that has readings (building, floor, zone, department, the registry's place
text), with its meters, their quantities and last reading; what a drill-down walks.
`breakdown`: the consumption of the children of a level over local dates from..to (both
included), one row per child and quantity: campus -> buildings -> floors -> zones -> meters, and
department -> zones. Sums for consumption, means for instantaneous quantities.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select

from projections.energy.queries import Level, _level_filter, _scope_filter
from projections.energy.tables import daily, monthly, places, series
from schemas.facility import CONSUMPTION, UNIT_OF

if TYPE_CHECKING:
    from datetime import date

    from sqlalchemy import Connection, Table

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
    """The children of (level, ident) with their consumption over start..end (local dates).

    Whole months inside the range are read from the monthly rows, the days around them from the
    daily rows: a year of a campus is 12 rows a meter, not 365."""
    child = CHILD.get(level)
    if child is None:
        return []
    sums: dict[tuple[Any, str], list[float]] = {}
    for table, lo, hi in _pieces(start, end):
        found = _children(conn, table, child=child, level=level, ident=ident, lo=lo, hi=hi,
                          department=department, quantity=quantity)  # fmt: skip
        for key, qty, total, samples in found:
            acc = sums.setdefault((key, qty), [0.0, 0])
            acc[0] += float(total)
            acc[1] += int(samples)
    out = []
    for (key, qty), (total, samples) in sorted(
        sums.items(), key=lambda kv: (kv[0][0] is not None, str(kv[0][0]), kv[0][1])
    ):
        summed = qty in CONSUMPTION
        value = total if summed else total / max(int(samples), 1)
        out.append({
            "level": child, "id": key, "quantity": qty, "unit": UNIT_OF.get(qty, ""),
            "aggregate": "sum" if summed else "mean", "value": round(value, 6), "samples": int(samples),
        })  # fmt: skip
    return out


def _pieces(start: date, end: date) -> list[tuple[Table, str, str]]:
    """[start, end] as (table, first, last) keys: days before the first whole month, the whole
    months, the days after the last."""
    first = start if start.day == 1 else _next_month(start)
    after = _next_month(end)  # the first day past end's month
    last = after if end == after - timedelta(days=1) else end.replace(day=1)  # exclusive
    if first >= last:
        return [(daily, start.isoformat(), end.isoformat())]
    out = [(monthly, first.isoformat()[:7], (last - timedelta(days=1)).isoformat()[:7])]
    if start < first:
        out.append((daily, start.isoformat(), (first - timedelta(days=1)).isoformat()))
    if last <= end:
        out.append((daily, last.isoformat(), end.isoformat()))
    return out


def _next_month(day: date) -> date:
    return (day.replace(day=28) + timedelta(days=4)).replace(day=1)


def _children(
    conn: Connection, table: Table, *, child: str, level: Level, ident: str | None, lo: str, hi: str,
    department: str | None, quantity: str | None,
) -> list[Any]:  # fmt: skip
    c = table.c
    column: Any = {"building": c.building, "zone": c.zone, "meter": c.meter_id}.get(child)
    if child == "floor":
        column = c.building + "/" + func.coalesce(c.floor, "")
    period = c.month if table is monthly else c.day
    where = [
        *_level_filter(table, level, ident),
        *_scope_filter(table, department),
        period >= lo,
        period <= hi,
    ]
    if quantity is not None:
        where.append(c.quantity == quantity)
    return list(
        conn.execute(
            select(column, c.quantity, func.sum(c.total), func.sum(c.samples))
            .where(*where)
            .group_by(column, c.quantity)
        ).all()
    )
