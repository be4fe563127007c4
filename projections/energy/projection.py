"""Read model `energy`: meter readings -> consumption per series, hour and day; anomalies by tick.

Fed by `canonical.facility.v1`: `facility.meter_readings_recorded` (a block of one series'
readings) and `facility.meter_read` (one reading, as older events on the log are) fold into the
same rows, so a block and its readings one by one give the same tables. For each series a batch touches, the
readings it adds and their neighbours are refolded: each reading's interval consumption from its
predecessor (projections.energy.registers: rollover, replacement, never negative), then the
hours those intervals cover and the days of those hours are recomputed from what is stored. So
late and out-of-order readings land where they belong, and any batching gives the same tables.
Totals are summed in Python in time order (not by SQL), so they are equal to the last bit.

Readings that come after every stored one of their series (meters read forward: nearly all)
are chained onto the series' stored tail, read for all such series of a batch at once; the
hours they reach are then written, and rolled up into days and months, for the whole batch in a
few statements (projections.energy.rollup). Late readings refold their series one at a time.

Detection (projections.energy.detect) runs on `tick`: each series' and zone's complete hours
since its watermark are judged against their history, and `facility.anomaly_detected` /
`facility.anomaly_cleared` are concluded with deterministic ids (see projections.energy.judge).
Late readings that change hours already judged have them judged again (projections.energy.rejudge).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from sqlalchemy import and_, bindparam, or_, select, update

from projections.energy.alarms import tick
from projections.energy.detect.model import DetectConfig
from projections.energy.registers import HOUR, ROUND, floor_hour, hour_of, hourly_totals_of, step
from projections.energy.rejudge import rewind_series
from projections.energy.rollup import Span, write
from projections.energy.tables import METADATA, NAME, places, readings, series
from projections.runtime.upsert import chunks, in_values, upsert, upsert_columns
from schemas.facility import CONSUMPTION, FacilityMeterRead, FacilityMeterReadingsRecorded, MeterPlace

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from sqlalchemy import Connection

    from schemas.catalogue import Event
    from schemas.envelope import EventBase

TOPICS = ("canonical.facility.v1",)


_PLACE_KEYS = ("building", "floor", "zone", "dept_code", "dept_name")
_PLACES_KEPT = 10_000  # places remembered by key (a campus has hundreds)
# A reading as a batch folds it: (at, kind, value, register_max, flags, place_key).
_New = tuple[datetime, str, float, float | None, str, str]
_NEW = ("series", "at", "kind", "value", "register_max", "flags", "place_key")  # (series, *_New)
# What the hours are computed from, as stored (`_chain` rows start the same way).
_CONTRIBUTING = tuple(readings.c[k] for k in ("at", "start", "value", "consumption", "note", "place_key"))
# The columns of a `_chain` row, as stored.
_STORED = ("at", "start", "value", "consumption", "note", "place_key", "kind", "register_max", "flags")


@dataclass(frozen=True, slots=True)
class EnergyConfig:
    """The site's time zone (days and months are local) and the detection thresholds."""

    tz: ZoneInfo = field(default_factory=lambda: ZoneInfo("Asia/Shanghai"))
    detect: DetectConfig | None = None
    site: str = "hub"


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
        self._places: dict[str, tuple[str | None, ...]] = {}

    def apply(self, conn: Connection, events: Sequence[Event]) -> list[EventBase]:
        rows: dict[str, dict[datetime, _New]] = {}  # series -> time -> reading (a resend wins)
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
                by_time[found] = (
                    found,
                    kind,
                    float(value),
                    register_max,
                    ",".join(quality) if quality else "",
                    key,
                )
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
        rows: dict[str, dict[datetime, _New]],
        place_rows: dict[str, dict[str, Any]],
        heads: dict[str, dict[str, Any]],
    ) -> None:
        """Write a batch's readings (folded by series and time), their places and series heads,
        and recompute the hours, days and months they reach."""
        upsert(conn, places, list(place_rows.values()), key=("place_key",), update=False)
        for key, row in place_rows.items():
            self._remember(key, row)
        stored = self._heads(conn, heads)
        # Per series, by time (readings arrive nearly in order: a cheap sort).
        spans = {s: [by_time[at] for at in sorted(by_time)] for s, by_time in sorted(rows.items()) if by_time}
        # A series whose new readings all come after what is stored (the usual case: meters read
        # forward) is appended; one with a late or resent reading is refolded around them.
        later = {s: new for s, new in spans.items() if s not in stored or new[0][0] > stored[s]}
        hours = self._append(conn, later, stored, heads)
        late = {s: new for s, new in spans.items() if s not in later}
        if late:
            upsert(conn, readings, [dict(zip(_NEW, (s, *r), strict=True)) for s in late for r in late[s]],
                   key=("series", "at"), update=True)  # fmt: skip
        for s, new in late.items():
            quantity = heads[s]["quantity"]
            span = self._refold(conn, s, quantity, new[0][0], new[-1][0])
            rewind_series(conn, s, quantity, heads[s]["zone"], span.lo)
            hours.append(span)
        write(conn, hours, lambda hour: local_day(hour, self.config.tz))

    def _remember(self, key: str, row: Mapping[str, Any]) -> None:
        """Keep a place's parts by its key (a digest of them: a key always names the same place)."""
        if len(self._places) >= _PLACES_KEPT:
            self._places.clear()
        self._places[key] = tuple(row[k] for k in _PLACE_KEYS)

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

    def _append(
        self,
        conn: Connection,
        later: dict[str, list[_New]],
        stored: dict[str, datetime],
        heads: dict[str, dict[str, Any]],
    ) -> list[Span]:
        """Store readings that come after every stored one of their series, with their
        intervals' consumption; the hours they reach, recomputed (not yet written)."""
        tails = self._tails(conn, {s: stored[s] for s in later if s in stored})
        columns: dict[str, list[Any]] = {c: [] for c in ("series", *_STORED)}
        out: list[Span] = []
        for s, new in later.items():
            tail = tails.get(s, [])
            before: Any = tail[-1] if tail else None
            if s in stored and (before is None or before[0] != stored[s]):
                # The head is always a stored reading's time; should it not be, read the tail
                # the plain way (what an earlier version did for every series).
                before, tail = self._last(conn, s, new[0][0])
            chained = _chain(new, before)
            for name, values in zip(_STORED, zip(*chained, strict=True), strict=True):
                columns[name] += values
            columns["series"] += [s] * len(chained)
            # The first hour the new readings reach: their first interval's, or (no interval:
            # an instant value or a usage) the hour the first one closes (10:00 closes 09:00).
            start = chained[0][1]
            lo = floor_hour(start) if start is not None else hour_of(chained[0][0])
            hi = hour_of(chained[-1][0]) + HOUR
            contributing = [r for r in tail if r[0] > lo] + chained
            out.append(self._span(conn, s, heads[s]["quantity"], (lo, hi), contributing))
        upsert_columns(conn, readings, columns, key=("series", "at"))
        return out

    @staticmethod
    def _tails(conn: Connection, last: dict[str, datetime]) -> dict[str, list[Any]]:
        """Each series' stored readings from the start of the hour of its last one (`last`), in
        time order: the last reading and those it shares its hour with. One query per distinct
        hour (a campus' meters are read at the same times: usually one)."""
        r = readings.c
        groups: dict[datetime, list[str]] = {}
        for s, at in last.items():
            groups.setdefault(floor_hour(at), []).append(s)
        out: dict[str, list[Any]] = {}
        for lo, names in groups.items():
            for part in chunks(conn, sorted(names)):
                query = (
                    select(r.series, *_CONTRIBUTING)
                    .where(in_values(conn, r.series, part), r.at >= lo)
                    .order_by(r.series, r.at)
                )
                for row in conn.execute(query):
                    out.setdefault(row[0], []).append(row[1:])
        return out

    @staticmethod
    def _last(conn: Connection, name: str, first: datetime) -> tuple[Any, list[Any]]:
        """The last stored reading of `name`, and the stored ones of its hour before `first`."""
        r = readings.c
        prev = conn.execute(
            select(*_CONTRIBUTING).where(r.series == name).order_by(r.at.desc()).limit(1)
        ).first()
        if prev is None:
            return None, []
        query = select(*_CONTRIBUTING).where(r.series == name, r.at >= floor_hour(prev.at), r.at < first)
        return prev, list(conn.execute(query.order_by(r.at)))

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

    def _refold(self, conn: Connection, name: str, quantity: str, lo: datetime, hi: datetime) -> Span:
        """Recompute the readings around [lo, hi]; their hours, from the first that changed."""
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
        r = readings.c
        query = select(*_CONTRIBUTING).where(
            r.series == name,
            r.at > first_hour,
            or_(r.start < end, and_(r.start.is_(None), r.at <= end)),
        )
        return self._span(conn, name, quantity, (first_hour, end), list(conn.execute(query.order_by(r.at))))

    def _span(
        self,
        conn: Connection,
        name: str,
        quantity: str,
        hours: tuple[datetime, datetime],
        contributing: list[Any],
    ) -> Span:
        """The hourly rows of `name` in `hours` [lo, hi) from the readings that reach them (in
        time order; each row's first six items as `_CONTRIBUTING`)."""
        lo, hi = hours
        totals = hourly_totals_of(contributing, consumption=quantity in CONSUMPTION, lo=lo, hi=hi)
        where = self._where(conn, {contributing[i][5] for *_, i in totals.values()})
        meter_id = name.removeprefix("MTR-").rsplit("/", 1)[0]
        tz = self.config.tz
        rows = []
        for hour, (total, samples, notes, i) in sorted(totals.items()):
            building, floor, zone, dept_code, dept_name = where[contributing[i][5]]
            rows.append({
                "series": name, "hour": hour, "meter_id": meter_id, "quantity": quantity,
                "building": building, "floor": floor, "zone": zone,
                "dept_code": dept_code, "dept_name": dept_name,
                "day": local_day(hour, tz),
                "total": round(total, 6), "samples": samples, "notes": ",".join(sorted(notes)),
            })  # fmt: skip
        return Span(name, lo, hi, rows)

    def _where(self, conn: Connection, keys: set[str]) -> dict[str, tuple[str | None, ...]]:
        """The places of `keys`: kept ones, the others read (stored readings of an older place)."""
        known = self._places
        missing = [k for k in keys if k not in known]
        if missing:
            p = places.c
            for row in conn.execute(select(places).where(p.place_key.in_(missing))).mappings():
                self._remember(str(row["place_key"]), dict(row))
        return {k: known[k] for k in keys}


def _chain(new: list[_New], before: Any) -> list[tuple[Any, ...]]:
    """New readings (time order) after `before` (the last stored one, or None), with their
    intervals: rows of (at, start, value, consumption, note, place_key, kind, register_max, flags)."""
    before_at, before_value = (None, None) if before is None else (before[0], before[2])
    out = []
    for at, kind, value, register_max, flags, key in new:
        # A register read forward (nearly every reading): step's first case, without the call.
        if (
            kind == "cumulative"
            and before_value is not None
            and (delta := value - before_value) >= 0
            and ("replaced" not in flags)
        ):
            used, note = round(delta, ROUND), None
        else:
            # "replaced": the one flag with that word in it
            done = step(
                before_value, value, kind=kind, register_max=register_max, replaced="replaced" in flags
            )
            used, note = done.consumption, done.note
        out.append(
            (
                at,
                before_at if kind == "cumulative" else None,
                value,
                used,
                note,
                key,
                kind,
                register_max,
                flags,
            )
        )
        before_at, before_value = at, value
    return out
