"""Hourly rows recomputed for a batch -> the hourly, daily and monthly tables, set-based.

A batch recomputes, for each series it touches, the hourly rows of a span of hours [lo, hi)
(`Span`). Writing them and rolling them up into the days and months they fall in takes the same
few statements whatever the number of series (a delete of each span's hours, an insert of
their rows, one read of the stored hours around them per group of series sharing their days,
and the same for days into months), not a dozen per series: a batch of a few readings of each
of many meters (a gateway push, an inbox file every 15 minutes) was mostly statement overhead.

Days and months are summed in Python in time order from their hourly and daily rows, so a
total is the same to the last bit however the readings were batched.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import bindparam, delete, or_, select

from projections.energy.registers import HOUR, floor_hour
from projections.energy.tables import daily, hourly, monthly
from projections.runtime.upsert import chunks, in_values, upsert

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping

    from sqlalchemy import Connection

_PLACE_KEYS = ("building", "floor", "zone", "dept_code", "dept_name")
_DAY_KEYS = ("series", "day", "meter_id", "quantity", *_PLACE_KEYS)
_MONTH_KEYS = ("series", "meter_id", "quantity", *_PLACE_KEYS)
# A local date's hours lie within a day of its UTC midnight (offsets are under 15 hours): the
# stored hours of some days are read from the series' hours in a range that surely holds them.
_MARGIN = timedelta(days=1)


@dataclass(frozen=True, slots=True)
class Span:
    """The hourly rows of `series` for the hours [lo, hi), recomputed (in hour order)."""

    series: str
    lo: datetime
    hi: datetime
    rows: list[dict[str, Any]]


def write(conn: Connection, spans: list[Span], local_day: Callable[[datetime], str]) -> None:
    """Replace each span's hours with its rows, then recompute the days and months they reach."""
    if not spans:
        return
    h = hourly.c
    conn.execute(
        delete(hourly).where(h.series == bindparam("s"), h.hour >= bindparam("lo"), h.hour < bindparam("hi")),
        [{"s": sp.series, "lo": sp.lo, "hi": sp.hi} for sp in spans],
    )
    upsert(conn, hourly, [r for sp in spans for r in sp.rows], key=("series", "hour"))
    reach: list[tuple[Span, list[str]]] = []
    for sp in spans:
        hours = int((sp.hi - sp.lo) / HOUR)
        if hours <= 0:
            continue
        # The local days of the hours [lo, hi): consecutive hours cover consecutive dates.
        first = date.fromisoformat(local_day(floor_hour(sp.lo)))
        last = date.fromisoformat(local_day(floor_hour(sp.lo + (hours - 1) * HOUR)))
        reach.append((sp, [(first + timedelta(days=i)).isoformat() for i in range((last - first).days + 1)]))
    _days(conn, reach)


def _days(conn: Connection, reach: list[tuple[Span, list[str]]]) -> None:
    """Recompute the daily rows of each span's `days` from its hourly rows (in hour order): the
    span's rows just written, and the stored ones of those days around the span."""
    h = hourly.c
    groups: dict[tuple[tuple[str, ...], datetime, datetime], list[str]] = {}
    for sp, days in reach:
        groups.setdefault((tuple(days), sp.lo, sp.hi), []).append(sp.series)
    around: dict[str, list[Any]] = {}  # series -> stored rows (mappings), in time order
    for (group_days, lo, hi), names in groups.items():
        days = list(group_days)
        low = datetime.combine(date.fromisoformat(days[0]), time(), tzinfo=UTC) - _MARGIN
        high = datetime.combine(date.fromisoformat(days[-1]), time(), tzinfo=UTC) + 2 * _MARGIN
        for part in chunks(conn, sorted(names)):
            query = (
                select(hourly)
                .where(
                    in_values(conn, h.series, part),
                    h.hour >= low,  # bounds the key range read; `day` decides
                    h.hour < high,
                    h.day.in_(days),
                    or_(h.hour < lo, h.hour >= hi),
                )
                .order_by(h.series, h.hour)
            )
            for row in conn.execute(query).mappings():
                around.setdefault(row["series"], []).append(row)
    fresh_days: list[dict[str, Any]] = []
    reach_months: list[tuple[str, list[str], list[dict[str, Any]]]] = []
    for sp, days in reach:
        stored = around.get(sp.series, ())
        found = [r for r in stored if r["hour"] < sp.lo] + sp.rows + [r for r in stored if r["hour"] >= sp.hi]
        out = _fold(found, "day", _DAY_KEYS)
        for fresh in out:
            fresh["month"] = fresh["day"][:7]
        fresh_days += out
        reach_months.append((sp.series, days, out))
    d = daily.c
    conn.execute(
        delete(daily).where(d.series == bindparam("s"), d.day == bindparam("d")),
        [{"s": sp.series, "d": day} for sp, days in reach for day in days],
    )
    upsert(conn, daily, fresh_days, key=("series", "day"))
    _months(conn, reach_months)


def _months(conn: Connection, reach: list[tuple[str, list[str], list[dict[str, Any]]]]) -> None:
    """Recompute the monthly rows of the months of each series' `days` from its daily rows (in
    day order): those just written, and the stored ones of those months around them."""
    d = daily.c
    groups: dict[tuple[str, ...], list[str]] = {}
    for name, days, _ in reach:
        groups.setdefault(tuple(days), []).append(name)
    around: dict[str, list[Any]] = {}  # series -> stored rows (mappings), in time order
    for group_days, names in groups.items():
        days = list(group_days)
        months = sorted({day[:7] for day in days})
        for part in chunks(conn, sorted(names)):
            query = (
                select(daily)
                .where(
                    in_values(conn, d.series, part),
                    d.day >= f"{months[0]}-01",  # bounds the key range read; `month` decides
                    d.day <= f"{months[-1]}-31",
                    d.month.in_(months),
                    d.day.not_in(days),
                )
                .order_by(d.series, d.day)
            )
            for row in conn.execute(query).mappings():
                around.setdefault(row["series"], []).append(row)
    fresh: list[dict[str, Any]] = []
    keys: list[dict[str, str]] = []
    for name, days, rows in reach:
        found = sorted([*around.get(name, ()), *rows], key=_day_of)
        fresh += _fold(found, "month", _MONTH_KEYS)
        keys += [{"s": name, "m": month} for month in sorted({day[:7] for day in days})]
    m = monthly.c
    conn.execute(delete(monthly).where(m.series == bindparam("s"), m.month == bindparam("m")), keys)
    upsert(conn, monthly, fresh, key=("series", "month"))


def _day_of(row: Mapping[str, Any]) -> str:
    return str(row["day"])


def _fold(rows: Iterable[Mapping[str, Any]], period: str, keys: tuple[str, ...]) -> list[dict[str, Any]]:
    """Rows (in time order) summed per `period`; the place of each period's latest row wins."""
    out: dict[str, dict[str, Any]] = {}
    for row in rows:
        key = row[period]
        found = out.get(key)
        if found is None:
            out[key] = {k: row[k] for k in keys} | {
                period: key,
                "total": row["total"],
                "samples": row["samples"],
            }
        else:
            found["total"] += row["total"]
            found["samples"] += row["samples"]
            found.update({k: row[k] for k in _PLACE_KEYS})
    for row in out.values():
        row["total"] = round(row["total"], 6)
    return list(out.values())
