"""What the API asks of the energy read model: consumption by level and grain; anomalies.

Levels: `campus` (everything), `building`, `floor` (`<building>/<floor>`), `zone`, `department`
(code or name), `meter`. Grains: `hour` (from the hourly rows), `day` (from the daily rows) and
`month` (from the monthly rows: whole months overlapping from..to, so a year of a campus is 12
rows a meter). Days and months are the site's; `from`/`to` are local dates, both included.
Consumption quantities are summed; the instantaneous ones (kW, temperatures, valve positions)
are averaged over their samples.

Every period also carries the previous period (month-on-month for months) and the same period a
year before (year-on-year), and the intensity per m2 when the area of the level is known.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any, Literal

from sqlalchemy import func, or_, select

from projections.energy.tables import anomalies, daily, hourly, monthly
from schemas.facility import CONSUMPTION, UNIT_OF

if TYPE_CHECKING:
    from collections.abc import Mapping
    from zoneinfo import ZoneInfo

    from sqlalchemy import ColumnElement, Connection, Table

Level = Literal["campus", "building", "floor", "zone", "department", "meter"]
Grain = Literal["hour", "day", "month"]


@dataclass(frozen=True, slots=True)
class Period:
    key: str  # 2024-06-12T09:00 | 2024-06-12 | 2024-06
    quantity: str
    value: float
    samples: int


def _level_filter(table: Table, level: Level, ident: str | None) -> list[ColumnElement[bool]]:
    c = table.c
    if level == "campus" or ident is None:
        return []
    if level == "floor":
        building, _, floor = ident.partition("/")
        # `B/` is building B's meters placed on no floor (as /energy/breakdown names them).
        return [c.building == building, c.floor == floor if floor else c.floor.is_(None)]
    if level == "department":
        return [or_(c.dept_code == ident, c.dept_name == ident)]
    column = {"building": c.building, "zone": c.zone, "meter": c.meter_id}[level]
    return [column == ident]


def _scope_filter(table: Table, department: str | None) -> list[ColumnElement[bool]]:
    c = table.c
    return [] if department is None else [or_(c.dept_code == department, c.dept_name == department)]


def totals(
    conn: Connection,
    *,
    level: Level,
    ident: str | None,
    start: date,
    end: date,
    grain: Grain,
    tz: ZoneInfo,
    department: str | None = None,
    quantity: str | None = None,
) -> list[Period]:
    """Consumption (or mean) per period and quantity for local dates start..end (both included)."""
    table = {"hour": hourly, "day": daily, "month": monthly}[grain]
    c = table.c
    where = [*_level_filter(table, level, ident), *_scope_filter(table, department)]
    if quantity is not None:
        where.append(c.quantity == quantity)
    if grain == "hour":
        lo = datetime.combine(start, time(), tzinfo=tz).astimezone(UTC)
        hi = datetime.combine(end + timedelta(days=1), time(), tzinfo=tz).astimezone(UTC)
        group: Any = c.hour
        where += [c.hour >= lo, c.hour < hi]
    elif grain == "day":
        group = c.day
        where += [c.day >= start.isoformat(), c.day <= end.isoformat()]
    else:  # whole months: the monthly rows (a year of a campus is 12 rows a meter)
        group = c.month
        where += [c.month >= start.isoformat()[:7], c.month <= end.isoformat()[:7]]
    rows = conn.execute(
        select(group, c.quantity, func.sum(c.total), func.sum(c.samples))
        .where(*where)
        .group_by(group, c.quantity)
        .order_by(group, c.quantity)
    ).all()
    out = []
    for key, qty, total, samples in rows:
        label = key.astimezone(tz).strftime("%Y-%m-%dT%H:%M") if grain == "hour" else str(key)
        value = float(total) if qty in CONSUMPTION else float(total) / max(int(samples), 1)
        out.append(Period(label, str(qty), round(value, 6), int(samples)))
    return out


def shift(key: str, grain: Grain, *, years: int = 0, periods: int = 0) -> str:
    """The period `periods` grains and `years` years before `key` (same label format)."""
    if grain == "month":
        y, m = int(key[:4]), int(key[5:7])
        index = y * 12 + (m - 1) - periods - 12 * years
        return f"{index // 12:04d}-{index % 12 + 1:02d}"
    fmt = "%Y-%m-%dT%H:%M" if grain == "hour" else "%Y-%m-%d"
    moment = datetime.strptime(key, fmt)  # noqa: DTZ007 - a local label, shifted as a label
    moment -= timedelta(hours=periods) if grain == "hour" else timedelta(days=periods)
    if years:
        day = min(moment.day, calendar.monthrange(moment.year - years, moment.month)[1])
        moment = moment.replace(year=moment.year - years, day=day)
    return moment.strftime(fmt)


def consumption(
    conn: Connection,
    *,
    level: Level,
    ident: str | None,
    start: date,
    end: date,
    grain: Grain,
    tz: ZoneInfo,
    department: str | None = None,
    quantity: str | None = None,
    area_m2: float | None = None,
) -> list[dict[str, Any]]:
    """Rows for the API: each period's value with the previous period and the year before."""
    current = totals(conn, level=level, ident=ident, start=start, end=end, grain=grain, tz=tz,
                     department=department, quantity=quantity)  # fmt: skip
    if not current:
        return []
    back = {"hour": timedelta(hours=1), "day": timedelta(days=1), "month": timedelta(days=31)}[grain]
    year_start = start.replace(year=start.year - 1, day=min(start.day, 28)) - back
    year_end = end.replace(year=end.year - 1, day=min(end.day, 28)) + timedelta(days=3)
    earlier = totals(conn, level=level, ident=ident, start=year_start, end=year_end, grain=grain, tz=tz,
                     department=department, quantity=quantity)  # fmt: skip
    prior = totals(conn, level=level, ident=ident, start=start - back, end=start, grain=grain, tz=tz,
                   department=department, quantity=quantity)  # fmt: skip
    known = {(p.key, p.quantity): p.value for p in (*earlier, *prior, *current)}
    out = []
    for p in current:
        previous = known.get((shift(p.key, grain, periods=1), p.quantity))
        year_ago = known.get((shift(p.key, grain, years=1), p.quantity))
        summed = p.quantity in CONSUMPTION
        out.append({
            "period": p.key,
            "quantity": p.quantity,
            "unit": UNIT_OF.get(p.quantity, ""),
            "aggregate": "sum" if summed else "mean",
            "value": p.value,
            "samples": p.samples,
            "previous_period": previous,
            "change_vs_previous_pct": _pct(p.value, previous),
            "same_period_last_year": year_ago,
            "change_vs_last_year_pct": _pct(p.value, year_ago),
            "area_m2": area_m2,
            "per_m2": round(p.value / area_m2, 6) if summed and area_m2 else None,
        })  # fmt: skip
    return out


def _pct(value: float, base: float | None) -> float | None:
    if base is None or base == 0:
        return None
    return round((value - base) / base * 100, 2)


def list_anomalies(
    conn: Connection,
    *,
    start: datetime,
    end: datetime,
    zone: str | None = None,
    kind: str | None = None,
    department: str | None = None,
    limit: int = 100,
    offset: int = 0,
) -> tuple[list[Mapping[str, Any]], int]:
    """Anomalies whose window overlaps [start, end), newest first."""
    a = anomalies.c
    where = [a.window_start < end, a.window_end > start, *_scope_filter(anomalies, department)]
    if zone is not None:
        where.append(a.zone == zone)
    if kind is not None:
        where.append(a.kind == kind)
    total = conn.execute(select(func.count()).select_from(anomalies).where(*where)).scalar_one()
    rows = (
        conn.execute(
            select(anomalies)
            .where(*where)
            .order_by(a.window_start.desc(), a.anomaly_id)
            .limit(limit)
            .offset(offset)
        )
        .mappings()
        .all()
    )
    return [dict(r) for r in rows], int(total)
