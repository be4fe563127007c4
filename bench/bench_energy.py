"""Energy (BMS): meter readings per second end to end on the embedded bus, and energy query p99.

    python -m bench.run bench_energy            (BENCH_SCALE shrinks or grows the sizes)

Measured in the same run, on the same synthetic campus (bench/energy_synth.py):
- the translator alone: a BMS CSV export (Chinese headers) -> blocks of readings, readings/s;
- the read model alone: `Energy.apply` on SQLite, 100 blocks a transaction, readings/s;
- end to end: the export stored (`hub ingest`), translated into blocks of readings
  (`facility.meter_readings_recorded`), published on the embedded bus and projected into the
  energy tables (`drain`), readings/s from store to queryable, read back through `consumption()`
  (what GET /energy/consumption answers); against its ceiling in the same run: csv.reader and one
  SQLite executemany of the same readings, no hub;
- queries: `consumption()` at campus/building/zone/department/meter level by day and month over
  a year of daily rows for N meters (written directly), and by hour over a week: p50 and p99.
"""

from __future__ import annotations

import csv
import gc
import random
import sqlite3
import statistics
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from sqlalchemy import create_engine, func, select

from adapters.base import TranslateContext
from adapters.bms import ADAPTER
from adapters.bms.mapping import default_mapping
from bench.energy_synth import generate, write_csv
from bench.report import load_note
from bench.whole_hub import scaled
from hub.bootstrap import build_hub
from hub.pipeline import drain, ingest_path
from hub.ports import RawRecord
from hub.settings import Settings
from projections.energy import Energy
from projections.energy.hierarchy import breakdown
from projections.energy.queries import consumption
from projections.energy.tables import METADATA, daily, hourly, monthly, readings
from schemas.facility import FacilityMeterReadingsRecorded

if TYPE_CHECKING:
    from collections.abc import Iterable

    from bench.report import Report

TZ = ZoneInfo("Asia/Shanghai")
BATCH = 100  # blocks per transaction


def _export(weeks: int, buildings: int, zones: int, folder: Path) -> tuple[Path, int]:
    campus, rows = generate(weeks=weeks, buildings=buildings, zones=zones, per_kind=1, seed=3)
    path = folder / "bms-campus.csv"
    write_csv(rows, campus, path)
    return path, len(rows)


def _translate(path: Path) -> tuple[float, list]:  # type: ignore[type-arg]
    payload = path.read_bytes()
    mapping = default_mapping()
    ctx = TranslateContext(
        site="bench", tz=TZ, adapter_version=ADAPTER.version, mapping_version=mapping.version
    )
    raw = RawRecord(raw_ref="bench", system="bms", site="bench", message_id=path.name, sha256="0" * 64,
                    size=len(payload), transport="file", received_at=datetime(2024, 7, 1, tzinfo=UTC),
                    metadata={"filename": path.name})  # fmt: skip
    started = time.perf_counter()
    out = ADAPTER.translate(raw, payload, mapping, ctx)
    seconds = time.perf_counter() - started
    return _count(e.event for e in out.events) / seconds, [e.event for e in out.events]


def _count(events: Iterable[object]) -> int:
    """Readings in `events` (blocks)."""
    return sum(len(e.payload.readings) for e in events if isinstance(e, FacilityMeterReadingsRecorded))


def _apply(events: list, folder: Path) -> float:  # type: ignore[type-arg]
    engine = create_engine(f"sqlite:///{folder / 'energy.db'}")
    projection = Energy()
    METADATA.create_all(engine)
    started = time.perf_counter()
    for i in range(0, len(events), BATCH):
        with engine.begin() as conn:
            projection.apply(conn, events[i : i + BATCH])
    return _count(events) / (time.perf_counter() - started)


async def _end_to_end(path: Path, folder: Path) -> tuple[float, int, float]:
    """`hub ingest bms FILE` as a user runs it: stored, translated, on the bus, projected; then the
    month's campus consumption read back the way GET /energy/consumption reads it."""
    settings = Settings(data_dir=folder / "hub", auth="off")
    saved = gc.get_threshold()
    async with build_hub(settings) as hub:
        gc.set_threshold(10_000, 20, 20)  # as the `hub` command runs it (hub.cli.main)
        try:
            started = time.perf_counter()
            await ingest_path(hub, "bms", path)
            await drain(hub)
            seconds = time.perf_counter() - started
        finally:
            gc.set_threshold(*saved)
        with hub.engine.connect() as conn:
            stored = int(conn.execute(select(func.count()).select_from(readings)).scalar_one())
            year = (date(2024, 1, 1), date(2024, 12, 31))
            months = consumption(
                conn, level="campus", ident=None, start=year[0], end=year[1], grain="month", tz=TZ
            )
    return stored / seconds, stored, sum(float(m["value"] or 0) for m in months)


def _ceiling(path: Path, folder: Path) -> float:
    """The same readings with no hub: csv.reader over the file, one executemany into SQLite, readings/s."""
    db = sqlite3.connect(folder / "ceiling.db")
    db.execute(
        "CREATE TABLE readings (meter TEXT, quantity TEXT, at TEXT, value REAL,"
        " PRIMARY KEY (meter, quantity, at))"
    )
    started = time.perf_counter()
    with path.open(encoding="utf-8-sig", newline="") as handle:
        rows = csv.reader(handle)
        next(rows)
        batch = [(r[0], r[4], r[5], float(r[6])) for r in rows]
    with db:
        db.executemany("INSERT OR REPLACE INTO readings VALUES (?, ?, ?, ?)", batch)
    seconds = time.perf_counter() - started
    db.close()
    return len(batch) / seconds


def _query_db(meters: int, folder: Path) -> tuple[object, list[tuple[str, str | None, str]]]:
    """A year of daily rows and a week of hourly rows for `meters` meters, written directly."""
    engine = create_engine(f"sqlite:///{folder / 'query.db'}")
    METADATA.create_all(engine)
    rng = random.Random(5)
    day0 = date(2024, 1, 1)
    per_building = max(meters // 10, 1)
    place = []
    for m in range(meters):
        b = f"B{m // per_building}"
        zone = f"{b}-Z{(m % per_building) // 10}"
        dept = f"D{(m // 10) % 40:02d}"
        place.append((f"M{m:05d}", b, f"{b}/F{m % 8}", zone, dept))
    with engine.begin() as conn:
        rows = []
        months: dict[tuple[str, str], dict[str, object]] = {}
        for meter, b, floor, zone, dept in place:
            for d in range(366):
                day = day0 + timedelta(days=d)
                rows.append({"series": f"MTR-{meter}/electricity_kwh", "day": day.isoformat(),
                             "month": day.isoformat()[:7], "meter_id": meter, "quantity": "electricity_kwh",
                             "building": b, "floor": floor.split("/")[1], "zone": zone, "dept_code": dept,
                             "dept_name": None, "total": rng.uniform(100, 900), "samples": 96})  # fmt: skip
                month = months.setdefault(
                    (meter, rows[-1]["month"]), {**rows[-1], "total": 0.0, "samples": 0}
                )
                month["total"] += rows[-1]["total"]  # type: ignore[operator]
                month["samples"] += 96  # type: ignore[operator]
            if len(rows) > 50_000:
                conn.execute(daily.insert(), rows)
                rows = []
        if rows:
            conn.execute(daily.insert(), rows)
        conn.execute(monthly.insert(), [{k: v for k, v in m.items() if k != "day"} for m in months.values()])
        rows = []
        start = datetime(2024, 6, 1, tzinfo=UTC)
        for meter, b, floor, zone, dept in place:
            for h in range(7 * 24):
                hour = start + timedelta(hours=h)
                rows.append({"series": f"MTR-{meter}/electricity_kwh", "hour": hour, "meter_id": meter,
                             "quantity": "electricity_kwh", "building": b, "floor": floor.split("/")[1],
                             "zone": zone, "dept_code": dept, "dept_name": None,
                             "day": hour.astimezone(TZ).date().isoformat(), "total": rng.uniform(1, 40),
                             "samples": 4, "notes": ""})  # fmt: skip
            if len(rows) > 50_000:
                conn.execute(hourly.insert(), rows)
                rows = []
        if rows:
            conn.execute(hourly.insert(), rows)
    meter, b, floor, zone, dept = place[len(place) // 2]
    return engine, [("campus", None, "month"), ("building", b, "day"), ("building", b, "month"),
                    ("floor", floor, "day"), ("zone", zone, "day"), ("department", dept, "month"),
                    ("meter", meter, "day"), ("building", b, "hour"), ("meter", meter, "hour")]  # fmt: skip


def _queries(
    engine: object, cases: list[tuple[str, str | None, str]], rounds: int
) -> tuple[float, float, int]:
    times = []
    with engine.connect() as conn:  # type: ignore[attr-defined]
        for _ in range(rounds):
            for level, ident, grain in cases:
                start, end = (date(2024, 6, 1), date(2024, 6, 7)) if grain == "hour" else (
                    date(2024, 1, 1), date(2024, 12, 31))  # fmt: skip
                t0 = time.perf_counter()
                consumption(conn, level=level, ident=ident, start=start, end=end, grain=grain, tz=TZ)  # type: ignore[arg-type]
                times.append(time.perf_counter() - t0)
    times.sort()
    return statistics.median(times) * 1000, times[int(len(times) * 0.99) - 1] * 1000, len(times)


def _drill_down(
    engine: object, cases: list[tuple[str, str | None, str]], rounds: int
) -> tuple[float, float, int]:
    """The console's drill-down step (`/energy/breakdown`): children of campus, a building, a
    floor and a zone, over the two weeks the page opens on and over the whole year."""
    parents = [("campus", None)] + [
        (lv, ident) for lv, ident, grain in cases if grain == "day" and lv != "meter"
    ]
    times = []
    with engine.connect() as conn:  # type: ignore[attr-defined]
        for _ in range(rounds):
            for level, ident in parents:
                for start in (date(2024, 12, 18), date(2024, 1, 1)):
                    t0 = time.perf_counter()
                    breakdown(conn, level=level, ident=ident, start=start, end=date(2024, 12, 31))  # type: ignore[arg-type]
                    times.append(time.perf_counter() - t0)
    times.sort()
    return statistics.median(times) * 1000, times[int(len(times) * 0.99) - 1] * 1000, len(times)


async def run(report: Report) -> None:
    weeks = scaled(4, 1)
    with tempfile.TemporaryDirectory(prefix="bench-energy-") as tmp:
        folder = Path(tmp)
        path, count = _export(weeks, 4, 5, folder)
        rate, events = _translate(path)
        report.add("energy", "BMS CSV export translated (Chinese headers)", rate, "readings/s",
                   note=f"{count} readings, {weeks} weeks, 40 meters + 8 valves")  # fmt: skip
        rate = _apply(events, folder)
        report.add("energy", "energy read model apply (SQLite, 100 blocks a batch)", rate, "readings/s",
                   note=f"{_count(events)} readings in {len(events)} blocks")  # fmt: skip
        ceiling = _ceiling(path, folder)
        note = load_note()
        rate, stored, kwh = await _end_to_end(path, folder)
        report.add("energy", "end to end: hub ingest bms FILE to queryable energy tables (blocks)", rate,
                   "readings/s", aim=">= 50,000 readings/s", peer=ceiling,
                   peer_label="csv.reader + one SQLite executemany of the same readings",
                   note=f"{stored} of {count} stored, {kwh:,.0f} campus total read back; {note}")  # fmt: skip
        meters = scaled(2000, 10)
        engine, cases = _query_db(meters, folder)
        p50, p99, n = _queries(engine, cases, rounds=10)
        what = f"consumption query p99 (1 year x {meters} meters, day/month; 1 week by hour)"
        report.add("energy", what, p99,
                   "ms", note=f"p50 {p50:.1f} ms over {n} queries, 9 level/grain cases")  # fmt: skip
        p50, p99, n = _drill_down(engine, cases, rounds=5)
        what = f"drill-down (breakdown) query p99 (1 year x {meters} meters; 2 weeks and 1 year)"
        report.add("energy", what,
                   p99, "ms", note=f"p50 {p50:.1f} ms over {n} queries")  # fmt: skip
