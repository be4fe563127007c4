"""Folding telemetry records: into device-days (what the rules judge) and into hour/day rollups.

Every fold is a merge of partial folds that gives the same result in any order (counts and
integer sums add, min/max, the last value by (time, event id), sets of codes unite), so the
tables are the same whether records arrive in order, late, in other batches, or by replay.

- `fold_days` / `merge_days`: the `days` rows of some raw records, merged into the stored ones;
- `roll` : raw records into the `rollups` table (hour and day buckets, per metric);
- `compact`: a device's raw records before its retention horizon rolled up, then removed;
- `fold_buckets`: raw records into buckets on the fly (the recent part of a chart's range).
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any

import structlog
from sqlalchemy import delete, select

from projections.device_health.tables import days, rollups, telemetry
from projections.runtime.upsert import upsert

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping, Sequence
    from zoneinfo import ZoneInfo

    from sqlalchemy import Connection

MICRO = 1_000_000
# The figures every record may carry, charted like coded metrics: (name, unit).
FIGURES = (
    ("usage_hours", "h"),
    ("power_on_cycles", None),
    ("battery_pct", "%"),
    ("battery_cycles", None),
    ("alarm_count", None),
)
GRAINS = ("hour", "day")
_BIG = 2**62  # a sum kept in millionths stays within a signed 64-bit integer
logger = structlog.get_logger()


def micro(value: float) -> int:
    return max(-_BIG, min(_BIG, round(value * MICRO)))


# -- device-days ----------------------------------------------------------------------------
def fold_days(rows: Iterable[Mapping[str, Any]]) -> dict[tuple[str, date], dict[str, Any]]:
    """The device-days of raw records (`telemetry` rows), keyed by (subject, day)."""
    out: dict[tuple[str, date], dict[str, Any]] = {}
    for r in rows:
        part = {
            "subject": r["subject"],
            "day": r["day"],
            "records": 1,
            "usage_hours": r["usage_hours"],
            "power_on_cycles": r["power_on_cycles"],
            "battery_micro": None if r["battery_pct"] is None else micro(r["battery_pct"]),
            "battery_n": 0 if r["battery_pct"] is None else 1,
            "alarms": int(r["alarm_count"] or 0),
            "errors": {e["code"] for e in json.loads(r["errors"])} if r["errors"] != "[]" else set(),
        }
        key = (r["subject"], r["day"])
        out[key] = merge_day(out[key], part) if key in out else part
    return out


def _top(a: Any, b: Any) -> Any:
    if a is None:
        return b
    return a if b is None else max(a, b)


def _add(a: int | None, b: int | None) -> int | None:
    if a is None:
        return b
    return a if b is None else a + b


def merge_day(a: Mapping[str, Any], b: Mapping[str, Any]) -> dict[str, Any]:
    """Two folds of the same device-day (`errors` as sets of codes) as one."""
    return {
        "subject": a["subject"],
        "day": a["day"],
        "records": a["records"] + b["records"],
        "usage_hours": _top(a["usage_hours"], b["usage_hours"]),
        "power_on_cycles": _top(a["power_on_cycles"], b["power_on_cycles"]),
        "battery_micro": _add(a["battery_micro"], b["battery_micro"]),
        "battery_n": a["battery_n"] + b["battery_n"],
        "alarms": a["alarms"] + b["alarms"],
        "errors": set(a["errors"]) | set(b["errors"]),
    }


def merge_days(conn: Connection, folded: dict[tuple[str, date], dict[str, Any]]) -> None:
    """Add `folded` device-days to the stored ones."""
    if not folded:
        return
    d = days.c
    subjects = sorted({s for s, _ in folded})
    lo, hi = min(day for _, day in folded), max(day for _, day in folded)
    query = select(days).where(d.subject.in_(subjects), d.day >= lo, d.day <= hi)
    for row in conn.execute(query).mappings():
        key = (row["subject"], row["day"])
        if key in folded:
            stored = dict(row) | {"errors": set(json.loads(row["errors"]))}
            folded[key] = merge_day(stored, folded[key])
    out = [
        v | {"errors": json.dumps(sorted(v["errors"]), ensure_ascii=False)} for _, v in sorted(folded.items())
    ]
    upsert(conn, days, out, key=("subject", "day"), update=True)


# -- hour and day rollups -------------------------------------------------------------------
class Buckets:
    """The site-local hour and day a time falls in (their starts, in UTC), cached by UTC hour."""

    def __init__(self, tz: ZoneInfo) -> None:
        self.tz = tz
        self._seen: dict[datetime, tuple[datetime, datetime]] = {}

    def of(self, at: datetime) -> tuple[datetime, datetime]:
        utc_hour = at.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
        found = self._seen.get(utc_hour)
        if found is None:
            local = at.astimezone(self.tz)
            hour = local.replace(minute=0, second=0, microsecond=0).astimezone(UTC)
            found = (hour, datetime.combine(local.date(), time(0), self.tz).astimezone(UTC))
            offset = local.utcoffset()
            if offset is not None and offset.total_seconds() % 3600 == 0:  # else the hour differs
                self._seen[utc_hour] = found
        return found


def _values(r: Mapping[str, Any], wanted: set[str] | None) -> Iterable[tuple[str, str | None, float]]:
    """(metric, unit, value) of each figure and coded metric a raw record carries."""
    for name, unit in FIGURES:
        value = r[name]
        if value is not None and (wanted is None or name in wanted):
            yield name, unit, float(value)
    if r["metrics"] != "[]":
        for m in json.loads(r["metrics"]):
            if m.get("value") is not None and (wanted is None or m["code"] in wanted):
                yield m["code"], m.get("unit"), float(m["value"])


def fold_buckets(
    rows: Iterable[Mapping[str, Any]],
    tz: ZoneInfo,
    grains: Sequence[str] = GRAINS,
    wanted: set[str] | None = None,
) -> dict[tuple[str, str, datetime, str], dict[str, Any]]:
    """Raw records as rollup rows, keyed by (subject, grain, bucket, metric). Records fold into
    hours (accumulators updated in place: this runs for every record that leaves the window), and
    hours into days (a site-local hour lies within one site day)."""
    buckets = Buckets(tz)
    hours: dict[tuple[str, datetime, str], list[Any]] = {}
    day_of: dict[datetime, datetime] = {}
    for r in rows:
        at, event_id, subject = r["at"], r["event_id"], r["subject"]
        hour, day = buckets.of(at)
        day_of[hour] = day
        for metric, unit, value in _values(r, wanted):
            at_hour = (subject, hour, metric)
            acc = hours.get(at_hour)
            if acc is None:
                hours[at_hour] = [unit, 1, value, value, micro(value), value, at, event_id]
                continue
            acc[1] += 1
            acc[2] = min(acc[2], value)
            acc[3] = max(acc[3], value)
            acc[4] += micro(value)
            if (at, event_id) > (acc[6], acc[7]):
                acc[0], acc[5], acc[6], acc[7] = unit, value, at, event_id
    out: dict[tuple[str, str, datetime, str], dict[str, Any]] = {}
    for (subject, hour, metric), acc in hours.items():
        row = {
            "subject": subject, "grain": "hour", "bucket": hour, "metric": metric, "unit": acc[0],
            "count": acc[1], "min": acc[2], "max": acc[3], "sum_micro": acc[4], "last": acc[5],
            "last_at": acc[6], "last_event_id": acc[7],
        }  # fmt: skip
        if "hour" in grains:
            out[subject, "hour", hour, metric] = row
        if "day" in grains:
            key = (subject, "day", day_of[hour], metric)
            part = row | {"grain": "day", "bucket": day_of[hour]}
            out[key] = merge_bucket(out[key], part) if key in out else part
    return out


def merge_bucket(a: Mapping[str, Any], b: Mapping[str, Any]) -> dict[str, Any]:
    """Two folds of one (device, grain, bucket, metric) as one."""
    later = b if (b["last_at"], b["last_event_id"]) > (a["last_at"], a["last_event_id"]) else a
    return dict(a) | {
        "unit": later["unit"],  # as the latest record sent it (any order gives the same)
        "count": a["count"] + b["count"],
        "min": min(a["min"], b["min"]),
        "max": max(a["max"], b["max"]),
        "sum_micro": a["sum_micro"] + b["sum_micro"],
        "last": later["last"],
        "last_at": later["last_at"],
        "last_event_id": later["last_event_id"],
    }


def roll(conn: Connection, rows: Sequence[Mapping[str, Any]], tz: ZoneInfo) -> None:
    """Fold raw records into the stored rollups."""
    folded = fold_buckets(rows, tz)
    if not folded:
        return
    u = rollups.c
    for subject in sorted({k[0] for k in folded}):
        mine = [k for k in folded if k[0] == subject]
        lo, hi = min(k[2] for k in mine), max(k[2] for k in mine)
        query = select(rollups).where(u.subject == subject, u.bucket >= lo, u.bucket <= hi)
        for row in conn.execute(query).mappings():
            key = (row["subject"], row["grain"], row["bucket"], row["metric"])
            if key in folded:
                folded[key] = merge_bucket(dict(row), folded[key])
    upsert(
        conn, rollups, [v for _, v in sorted(folded.items())], key=("subject", "grain", "bucket", "metric")
    )


def stagger(subject: str) -> int:
    """The hour of the site day at which a device's raw window moves (0-23, fixed per device): the
    devices of a gateway all cross midnight together, and rolling up every device's day in one
    transaction would hold the write lock for seconds; spread over the day, each move is small."""
    return int(hashlib.sha256(subject.encode()).hexdigest()[:8], 16) % 24


def horizon(subject: str, last_at: datetime, raw_days: int, tz: ZoneInfo) -> datetime | None:
    """The first instant whose records a device keeps raw: `raw_days` days before the latest of
    its daily cuts (site time, at the device's `stagger` hour) at or before its latest record. A
    whole hour: no hour bucket is split between raw and rolled up. None: everything stays raw
    (`raw_days` 0). A function of the device's latest record only: replay moves it the same way."""
    if raw_days <= 0:
        return None
    shift = timedelta(hours=stagger(subject))
    local = last_at.astimezone(tz)
    cut_day = (local.replace(tzinfo=None) - shift).date() - timedelta(days=raw_days)
    return (datetime.combine(cut_day, time(0)) + shift).replace(tzinfo=tz).astimezone(UTC)


def compact(conn: Connection, subject: str, before: datetime, tz: ZoneInfo, *, chunk: int = 20_000) -> int:
    """Roll up and remove the device's raw records before `before`; how many there were."""
    t = telemetry.c
    done = 0
    while True:
        query = (
            select(telemetry)
            .where(t.subject == subject, t.at < before)
            .order_by(t.at, t.event_id)
            .limit(chunk)
        )
        rows = [dict(r) for r in conn.execute(query).mappings()]
        if not rows:
            if done:
                logger.debug("device_health.rolled_up", subject=subject, before=str(before), records=done)
            return done
        roll(conn, rows, tz)
        ids = [r["event_id"] for r in rows]
        for start in range(0, len(ids), 500):
            conn.execute(delete(telemetry).where(t.event_id.in_(ids[start : start + 500])))
        done += len(rows)
