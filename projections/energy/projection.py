"""Read model `energy`: meter readings -> consumption per series, hour and day; anomalies by tick.

Fed by `canonical.facility.v1`: `facility.meter_readings_recorded` (a block of one series'
readings) and `facility.meter_read` (one reading, as older events on the log are) fold into the
same rows, so a block and its readings one by one give the same tables. For each series a batch touches, the
readings it adds and their neighbours are refolded: each reading's interval consumption from its
predecessor (projections.energy.registers: rollover, replacement, never negative), then the
hours those intervals cover and the days of those hours are recomputed from what is stored. So
late and out-of-order readings land where they belong, and any batching gives the same tables.
Totals are summed in Python in time order (not by SQL), so they are equal to the last bit.

Detection (projections.energy.detect) runs on `tick`: each series' and zone's complete hours
since its watermark are judged against their history, and `facility.anomaly_detected` /
`facility.anomaly_cleared` are concluded with deterministic ids (see projections.energy.judge).
Late readings that change hours already judged have them judged again (projections.energy.rejudge).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from typing import TYPE_CHECKING, Any, NamedTuple
from zoneinfo import ZoneInfo

from sqlalchemy import and_, bindparam, delete, or_, select, update

from projections.energy.alarms import tick
from projections.energy.detect.model import DetectConfig
from projections.energy.registers import HOUR, ROUND, floor_hour, hour_of, hourly_totals, step
from projections.energy.rejudge import rewind_series
from projections.energy.tables import METADATA, NAME, daily, hourly, monthly, places, readings, series
from projections.runtime.upsert import upsert
from schemas.facility import CONSUMPTION, FacilityMeterRead, FacilityMeterReadingsRecorded, MeterPlace

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from sqlalchemy import Connection

    from schemas.catalogue import Event
    from schemas.envelope import EventBase

TOPICS = ("canonical.facility.v1",)


_PLACE_KEYS = ("building", "floor", "zone", "dept_code", "dept_name")
_ROLLUP_KEYS = ("series", "meter_id", "quantity", *_PLACE_KEYS)


class _Stored(NamedTuple):
    """A reading as `_hours` reads it back (from the table, or just appended)."""

    at: datetime
    start: datetime | None
    value: float
    consumption: float | None
    note: str | None
    place_key: str


@dataclass(frozen=True, slots=True)
class EnergyConfig:
    """The site's time zone (days and months are local) and the detection thresholds."""

    tz: ZoneInfo = field(default_factory=lambda: ZoneInfo("Asia/Shanghai"))
    detect: DetectConfig | None = None
    site: str = "hub"


def _day_of(row: Mapping[Any, Any]) -> str:
    return str(row["day"])


def local_day(hour: datetime, tz: ZoneInfo) -> str:
    """The site's date of `hour` (ISO); each UTC hour once per zone (every series shares them)."""
    return _local_day(hour, tz) if hour.tzinfo is UTC else hour.astimezone(tz).date().isoformat()


@lru_cache(maxsize=1 << 16)
def _local_day(hour: datetime, tz: ZoneInfo) -> str:
    return hour.astimezone(tz).date().isoformat()


def place_key(parts: tuple[str | None, ...]) -> str:
    return hashlib.sha256("\x1f".join(p or "" for p in parts).encode()).hexdigest()[:32]


class Energy:
    """The energy read model (see the module docstring)."""

    name = NAME
    topics = TOPICS
    metadata = METADATA

    def __init__(self, config: EnergyConfig | None = None) -> None:
        self.config = config or EnergyConfig()

    def apply(self, conn: Connection, events: Sequence[Event]) -> list[EventBase]:
        rows: dict[str, dict[datetime, dict[str, Any]]] = {}  # series -> time -> row (a resend wins)
        place_rows: dict[str, dict[str, Any]] = {}
        heads: dict[str, dict[str, Any]] = {}
        utc: dict[tuple[datetime, int], datetime] = {}
        for event in events:
            if isinstance(event, FacilityMeterReadingsRecorded):
                p = event.payload
                block = [(at, value, p.quality.get(i, ())) for i, (at, value) in enumerate(p.readings)]
            elif isinstance(event, FacilityMeterRead):
                p = event.payload  # type: ignore[assignment]  # the single form: same fields
                block = [(event.occurred_at, event.payload.value, event.payload.quality)]
            else:
                continue
            key = self._place(p.place, place_rows)
            series_id = event.subject
            register_max = None if p.register_max is None else float(p.register_max)
            kind = p.kind
            by_time = rows.setdefault(series_id, {})
            last = None
            for at, value, quality in block:
                # The stored form; a campus' series share their times: each converted once.
                found = utc.get((at, at.fold))
                if found is None:
                    found = utc[(at, at.fold)] = at.astimezone(UTC)
                by_time[found] = {
                    "series": series_id,
                    "at": found,
                    "kind": kind,
                    "value": float(value),
                    "register_max": register_max,
                    "flags": ",".join(quality) if quality else "",
                    "place_key": key,
                }
                if last is None or found > last:
                    last = found
            head = heads.get(series_id)
            if last is not None and (head is None or last >= head["last_at"]):
                heads[series_id] = {
                    "series": series_id,
                    "meter_id": p.meter_id,
                    "quantity": p.quantity,
                    "unit": p.unit,
                    "place_key": key,
                    **{k: v for k, v in place_rows[key].items() if k not in ("place_key", "place")},
                    "last_at": last,
                }
        if any(rows.values()):
            self._store(conn, rows, place_rows, heads)
        return []

    def _store(
        self,
        conn: Connection,
        rows: dict[str, dict[datetime, dict[str, Any]]],
        place_rows: dict[str, dict[str, Any]],
        heads: dict[str, dict[str, Any]],
    ) -> None:
        """Write a batch's readings (folded by series and time), their places and series heads,
        and recompute the hours, days and months they reach."""
        upsert(conn, places, list(place_rows.values()), key=("place_key",), update=False)
        stored = self._heads(conn, heads)
        # Per series, by time (readings arrive nearly in order: a cheap sort).
        spans = {s: [by_time[at] for at in sorted(by_time)] for s, by_time in sorted(rows.items()) if by_time}
        # A series whose new readings all come after what is stored (the usual case: meters read
        # forward) is appended; one with a late or resent reading is refolded around them.
        later = {s: new for s, new in spans.items() if s not in stored or new[0]["at"] > stored[s]}
        appended = [r for s in sorted(later) for r in self._chain(conn, s, later[s])]
        upsert(conn, readings, appended, key=("series", "at"), update=True)
        late = [r for s, new in spans.items() if s not in later for r in new]
        upsert(conn, readings, late, key=("series", "at"), update=True)
        for s in sorted(spans):
            quantity = heads[s]["quantity"]
            if s in later:
                new = later[s]
                # The first hour the new readings reach: their first interval's, or (no interval:
                # an instant value or a usage) the hour the first one closes (10:00 closes 09:00).
                start = new[0]["start"]
                first = floor_hour(start) if start is not None else hour_of(new[0]["at"])
                end = hour_of(new[-1]["at"]) + HOUR
                self._hours(conn, s, quantity, first, end, appended=new)
            else:
                changed = self._refold(conn, s, quantity, spans[s][0]["at"], spans[s][-1]["at"])
                rewind_series(conn, s, quantity, heads[s]["zone"], changed)

    @staticmethod
    def _place(where: MeterPlace, place_rows: dict[str, dict[str, Any]]) -> str:
        dept = where.department
        parts = (
            where.building,
            where.floor,
            where.zone,
            dept.code if dept else None,
            dept.name if dept else None,
            where.place,
        )
        key = place_key(parts)
        place_rows[key] = dict(
            zip(("building", "floor", "zone", "dept_code", "dept_name", "place"), parts, strict=True)
        ) | {"place_key": key}
        return key

    def _chain(self, conn: Connection, name: str, new: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """New readings after the last stored one, with their intervals' consumption."""
        r = readings.c
        prev = conn.execute(
            select(r.at, r.value).where(r.series == name).order_by(r.at.desc()).limit(1)
        ).first()
        before_at, before_value = (None, None) if prev is None else (prev.at, prev.value)
        for row in new:
            value, kind, flags = row["value"], row["kind"], row["flags"]
            # A register read forward (nearly every reading): step's first case, without the call.
            if (
                kind == "cumulative"
                and before_value is not None
                and (delta := value - before_value) >= 0
                and "replaced" not in flags
            ):
                row["consumption"], row["note"] = round(delta, ROUND), None
            else:
                done = step(
                    before_value,
                    value,
                    kind=kind,
                    register_max=row["register_max"],
                    replaced="replaced" in flags,  # the one flag with that word in it
                )
                row["consumption"], row["note"] = done.consumption, done.note
            row["start"] = before_at if kind == "cumulative" else None
            before_at, before_value = row["at"], value
        return new

    def tick(self, conn: Connection, now: datetime) -> Sequence[EventBase]:
        """Judge the hours completed since the last tick (projections.energy.alarms)."""
        return tick(conn, now, self.config.detect or DetectConfig(tz=self.config.tz), site=self.config.site)

    def _heads(self, conn: Connection, heads: dict[str, dict[str, Any]]) -> dict[str, datetime]:
        """Keep each series' latest place and reading time; the stored times before this batch."""
        s = series.c
        stored = dict(conn.execute(select(s.series, s.last_at).where(s.series.in_(list(heads)))).all())
        newer = [h for k, h in heads.items() if k not in stored or h["last_at"] >= stored[k]]
        upsert(conn, series, newer, key=("series",), update=True)
        return stored

    def _refold(self, conn: Connection, name: str, quantity: str, lo: datetime, hi: datetime) -> datetime:
        """Recompute the readings around [lo, hi] and their hours; the first hour that changed."""
        r = readings.c
        cols = (r.at, r.kind, r.value, r.register_max, r.flags, r.start, r.consumption, r.note)
        base = select(*cols).where(r.series == name)
        prev = conn.execute(base.where(r.at < lo).order_by(r.at.desc()).limit(1)).first()
        window = list(conn.execute(base.where(r.at >= lo, r.at <= hi).order_by(r.at)))
        nxt = conn.execute(base.where(r.at > hi).order_by(r.at).limit(1)).first()
        chain = [*([prev] if prev else []), *window, *([nxt] if nxt else [])]
        changes: list[dict[str, Any]] = []
        first = 1 if prev else 0
        for i in range(first, len(chain)):
            row, before = chain[i], chain[i - 1] if i > 0 else None
            done = step(
                None if before is None else before.value,
                row.value,
                kind=row.kind,
                register_max=row.register_max,
                replaced="replaced" in row.flags.split(","),
            )
            start = None if before is None or row.kind != "cumulative" else before.at
            if (start, done.consumption, done.note) != (row.start, row.consumption, row.note):
                changes.append(
                    {"k_at": row.at, "start": start, "consumption": done.consumption, "note": done.note}
                )
        if changes:
            conn.execute(
                update(readings)
                .where(r.series == name, r.at == bindparam("k_at", type_=r.at.type))
                .values(
                    start=bindparam("start", type_=r.start.type),
                    consumption=bindparam("consumption"),
                    note=bindparam("note"),
                ),
                changes,
            )
        touched = [row.at for row in window] + [c["k_at"] for c in changes]
        starts = [c["start"] for c in changes if c["start"] is not None]
        # A reading on the hour closes the hour before it: that hour changes too.
        first_hour = min([*map(floor_hour, starts), *map(hour_of, touched)])
        end = hour_of(max(touched)) + HOUR
        self._hours(conn, name, quantity, first_hour, end)
        return first_hour

    def _hours(
        self,
        conn: Connection,
        name: str,
        quantity: str,
        lo: datetime,
        hi: datetime,
        *,
        appended: list[dict[str, Any]] | None = None,
    ) -> None:
        """Recompute the hourly rows of `name` in [lo, hi), then the days they fall in.

        `appended`: readings just added after every stored one (in time order), so only the
        stored ones before them are read back (the same rows a full read would find).
        """
        r = readings.c
        cols = (r.at, r.start, r.value, r.consumption, r.note, r.place_key)
        query = select(*cols).where(r.series == name, r.at > lo).order_by(r.at)
        if appended:
            query = query.where(r.at < appended[0]["at"])
        else:
            query = query.where(or_(r.start < hi, and_(r.start.is_(None), r.at <= hi)))
        contributing: list[Any] = list(conn.execute(query).all())
        contributing += [
            _Stored(r["at"], r["start"], r["value"], r["consumption"], r["note"], r["place_key"])
            for r in appended or ()
        ]
        # Rows and _Stored both read as intervals (at, start, value, consumption, note).
        totals = hourly_totals(contributing, consumption=quantity in CONSUMPTION, lo=lo, hi=hi)
        keys = {contributing[i].place_key for *_, i in totals.values()}
        where = {p.place_key: p for p in conn.execute(select(places).where(places.c.place_key.in_(keys)))}
        meter_id = name.removeprefix("MTR-").rsplit("/", 1)[0]
        tz = self.config.tz
        rows = []
        for hour, (total, samples, notes, i) in sorted(totals.items()):
            p = where[contributing[i].place_key]
            rows.append({
                "series": name, "hour": hour, "meter_id": meter_id, "quantity": quantity,
                "building": p.building, "floor": p.floor, "zone": p.zone,
                "dept_code": p.dept_code, "dept_name": p.dept_name,
                "day": local_day(hour, tz),
                "total": round(total, 6), "samples": samples, "notes": ",".join(sorted(notes)),
            })  # fmt: skip
        h = hourly.c
        conn.execute(delete(hourly).where(h.series == name, h.hour >= lo, h.hour < hi))
        upsert(conn, hourly, rows, key=("series", "hour"))
        hours = int((hi - lo) / HOUR)
        if hours <= 0:
            return
        # The local days of the hours [lo, hi): consecutive hours cover consecutive dates.
        first = date.fromisoformat(local_day(floor_hour(lo), tz))
        last = date.fromisoformat(local_day(floor_hour(lo + (hours - 1) * HOUR), tz))
        days = [(first + timedelta(days=i)).isoformat() for i in range((last - first).days + 1)]
        self._days(conn, name, days, rows, (lo, hi))

    def _days(
        self,
        conn: Connection,
        name: str,
        days: list[str],
        fresh: list[dict[str, Any]],
        span: tuple[datetime, datetime],
    ) -> None:
        """Recompute the daily rows of `name` for `days` from its hourly rows (in hour order):
        `fresh`, the hours of `span` just written, and the stored ones of those days around it."""
        h = hourly.c
        lo, hi = span
        around = (
            conn.execute(
                select(hourly)
                .where(h.series == name, h.day.in_(days), or_(h.hour < lo, h.hour >= hi))
                .order_by(h.hour)
            )
            .mappings()
            .all()
        )
        found = [r for r in around if r["hour"] < lo] + fresh + [r for r in around if r["hour"] >= hi]
        out: dict[str, dict[str, Any]] = {}
        for row in found:
            day = out.get(row["day"])
            if day is None:
                out[row["day"]] = {
                    k: row[k]
                    for k in (
                        "series",
                        "day",
                        "meter_id",
                        "quantity",
                        "building",
                        "floor",
                        "zone",
                        "dept_code",
                        "dept_name",
                    )
                } | {"month": row["day"][:7], "total": row["total"], "samples": row["samples"]}
            else:
                day["total"] += row["total"]
                day["samples"] += row["samples"]
                day.update({k: row[k] for k in ("building", "floor", "zone", "dept_code", "dept_name")})
        for day in out.values():
            day["total"] = round(day["total"], 6)
        conn.execute(delete(daily).where(daily.c.series == name, daily.c.day.in_(days)))
        fresh_days = list(out.values())
        upsert(conn, daily, fresh_days, key=("series", "day"))
        self._months(conn, name, sorted({d[:7] for d in days}), fresh_days, days)

    def _months(
        self, conn: Connection, name: str, months: list[str], fresh: list[dict[str, Any]], days: list[str]
    ) -> None:
        """Recompute the monthly rows of `name` for `months` from its daily rows (in day order):
        `fresh`, the rows of `days` just written, and the stored ones of those months around them."""
        d = daily.c
        around = (
            conn.execute(
                select(daily).where(d.series == name, d.month.in_(months), d.day.not_in(days)).order_by(d.day)
            )
            .mappings()
            .all()
        )
        rows: list[Mapping[Any, Any]] = list(around)
        rows += fresh
        found = sorted(rows, key=_day_of)
        out: dict[str, dict[str, Any]] = {}
        for row in found:
            month = out.get(row["month"])
            if month is None:
                out[row["month"]] = {k: row[k] for k in _ROLLUP_KEYS} | {
                    "month": row["month"], "total": row["total"], "samples": row["samples"]
                }  # fmt: skip
            else:
                month["total"] += row["total"]
                month["samples"] += row["samples"]
                month.update({k: row[k] for k in _PLACE_KEYS})
        for month in out.values():
            month["total"] = round(month["total"], 6)
        conn.execute(delete(monthly).where(monthly.c.series == name, monthly.c.month.in_(months)))
        upsert(conn, monthly, list(out.values()), key=("series", "month"))
