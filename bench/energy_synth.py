"""Synthetic BMS data: 15-minute readings of a hospital campus, with labelled injected anomalies.

    python -m bench.energy_synth --weeks 52 --buildings 4 --zones 5 --out campus.csv

A campus of buildings, zones per building, and per zone an electricity meter (kWh register) and a
water meter (m3 register); one HVAC zone per building has heating and cooling valve positions.
Loads follow a hospital day (a base that never stops, more on weekday daytime, less at weekends),
with multiplicative noise; valves follow an outdoor temperature with a yearly and a daily cycle,
so heating and cooling never overlap by themselves. After `clean_weeks` of history, anomalies are
injected and labelled: base-load leaks (extra flow for days), surges (hours at 2.5-4x), stuck
registers (frozen for 12-30 h), gaps (no readings for 3-10 h) and simultaneous heating and
cooling (both valves open for 4-10 h). One meter rolls over and one is replaced (register back to
near zero): neither is an anomaly. Seeded: the same arguments give the same data.
"""

from __future__ import annotations

import argparse
import csv
import math
import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

STEP = timedelta(minutes=15)
TZ = ZoneInfo("Asia/Shanghai")


@dataclass(frozen=True, slots=True)
class Label:
    kind: str
    scope: str  # series (MTR-<meter>/<quantity>) or zone:<id>
    start: datetime
    end: datetime


@dataclass(slots=True)
class Meter:
    id: str
    quantity: str
    zone: str
    building: str
    floor: str
    base: float  # consumption per 15 minutes at night
    day_extra: float  # extra per 15 minutes on a weekday at midday
    register: float
    register_max: float

    @property
    def series(self) -> str:
        return f"MTR-{self.id}/{self.quantity}"


@dataclass(slots=True)
class Campus:
    meters: list[Meter] = field(default_factory=list)
    hvac_zones: list[tuple[str, str, str]] = field(default_factory=list)  # (zone, building, floor)
    labels: list[Label] = field(default_factory=list)
    replaced: set[tuple[str, datetime]] = field(default_factory=set)  # (series, at): not anomalies
    rollovers: set[str] = field(default_factory=set)


Row = tuple[str, str, datetime, float]  # meter, quantity, at (UTC), value


def _occupancy(local: datetime) -> float:
    """0..1: how busy the zone is at this local time (a hospital never empties)."""
    hour = local.hour + local.minute / 60
    day = max(0.0, math.sin(math.pi * (hour - 7) / 12)) if 7 <= hour <= 19 else 0.0
    return day * (0.35 if local.weekday() >= 5 else 1.0)


def _outdoor(at: datetime, start: datetime) -> float:
    days = (at - start).total_seconds() / 86400
    local = at.astimezone(TZ)
    hour = local.hour + local.minute / 60
    return 16 + 12 * math.sin(2 * math.pi * (days - 100) / 365) + 5 * math.sin(math.pi * (hour - 9) / 12)


def build_campus(rng: random.Random, buildings: int, zones: int) -> Campus:
    campus = Campus()
    for b in range(buildings):
        building = "ABCDEFGH"[b]
        for z in range(zones):
            floor = f"{z + 1}F"
            zone = f"{building}-{floor}-Z{z + 1}"
            kw = rng.uniform(15, 60)
            campus.meters.append(
                Meter(f"{zone}-E", "electricity_kwh", zone, building, floor, kw / 4,
                      kw / 4 * rng.uniform(0.6, 1.2),
                      rng.uniform(1e4, 5e5), 999999.99)
            )  # fmt: skip
            flow = rng.uniform(0.2, 0.8)
            campus.meters.append(
                Meter(f"{zone}-W", "water_m3", zone, building, floor, flow / 4 * 0.15, flow / 4,
                      rng.uniform(1e3, 5e4), 99999.999)
            )  # fmt: skip
        campus.hvac_zones.append((f"{building}-1F-Z1", building, "1F"))
    roll = campus.meters[0]
    roll.register = roll.register_max - 3 * 96 * (roll.base + roll.day_extra)  # wraps within days
    campus.rollovers.add(roll.series)
    return campus


def _windows(
    rng: random.Random, first: datetime, last: datetime, count: int, hours: tuple[int, int]
) -> list[tuple[datetime, datetime]]:
    """`count` non-overlapping windows (whole hours) between first and last, a day apart at least."""
    out: list[tuple[datetime, datetime]] = []
    tries = 0
    span = (last - first).total_seconds() // 3600 - hours[1] - 24
    while span > 0 and len(out) < count and tries < 1000:
        tries += 1
        start = first + timedelta(hours=rng.randrange(int(span)))
        end = start + timedelta(hours=rng.randint(*hours))
        if all(end + timedelta(days=1) < s or e + timedelta(days=1) < start for s, e in out):
            out.append((start, end))
    return out


Window = tuple[datetime, datetime]


@dataclass(slots=True)
class Plan:
    """What is injected where: extra use (add or multiply), frozen registers, silences, both valves."""

    extra: dict[str, list[tuple[datetime, datetime, str, float]]] = field(default_factory=dict)
    frozen: dict[str, list[Window]] = field(default_factory=dict)
    silent: dict[str, list[Window]] = field(default_factory=dict)
    both: dict[str, list[Window]] = field(default_factory=dict)
    noise: float = 0.04  # multiplicative, per 15-minute reading (standard deviation)
    strength: tuple[float, float] = (2.5, 4.0)  # leaks add this many base loads; surges multiply


def _inside(windows: list[Window] | None, at: datetime) -> bool:
    return any(s < at <= e for s, e in windows or ())


def _plan(rng: random.Random, campus: Campus, window: Window, per_kind: int, plan: Plan) -> Plan:
    """Injected anomalies within `window`, each labelled on `campus`."""
    first, last = window
    pool = [m for m in campus.meters if m.series not in campus.rollovers]
    for s, e in _windows(rng, first, last, per_kind, (48, 96)):
        m = rng.choice(pool)
        plan.extra.setdefault(m.series, []).append((s, e, "add", m.base * rng.uniform(*plan.strength)))
        campus.labels.append(Label("base_load_leak", m.series, s, e))
    for day, _ in _windows(rng, first, last, per_kind, (2, 4)):
        m = rng.choice(pool)
        s = day.astimezone(TZ).replace(hour=rng.choice([10, 11, 14, 15, 20]), minute=0).astimezone(UTC)
        e = s + timedelta(hours=rng.randint(2, 4))
        plan.extra.setdefault(m.series, []).append((s, e, "mul", rng.uniform(*plan.strength)))
        campus.labels.append(Label("surge", m.series, s, e))
    for s, e in _windows(rng, first, last, per_kind, (12, 30)):
        m = rng.choice(pool)
        plan.frozen.setdefault(m.series, []).append((s, e))
        campus.labels.append(Label("stuck_meter", m.series, s, e))
    for s, e in _windows(rng, first, last, per_kind, (3, 10)):
        m = rng.choice(campus.meters)
        plan.silent.setdefault(m.series, []).append((s, e))
        campus.labels.append(Label("gap", m.series, s, e))
    for s, e in _windows(rng, first, last, per_kind, (4, 10)):
        zone = rng.choice(campus.hvac_zones)[0]
        plan.both.setdefault(zone, []).append((s, e))
        campus.labels.append(Label("simultaneous_heating_cooling", f"zone:{zone}", s, e))
    return plan


def _use(rng: random.Random, m: Meter, at: datetime, plan: Plan) -> float:
    use = (m.base + m.day_extra * _occupancy(at.astimezone(TZ))) * rng.gauss(1.0, plan.noise)
    for s, e, mode, amount in plan.extra.get(m.series, ()):
        if s < at <= e:
            use = use + amount if mode == "add" else use * amount
    return max(use, 0.0)


def _valves(rng: random.Random, zone: str, at: datetime, begin: datetime, plan: Plan) -> list[Row]:
    temp = _outdoor(at, begin)
    heat = min(100.0, max(0.0, (18 - temp) * 8))
    cool = min(100.0, max(0.0, (temp - 24) * 8))
    if _inside(plan.both.get(zone), at):
        heat, cool = rng.uniform(35, 80), rng.uniform(35, 80)
    return [(f"{zone}-HV", "heating_valve_pct", at, round(heat, 1)), (f"{zone}-CV", "cooling_valve_pct", at,
                                                                      round(cool, 1))]  # fmt: skip


def generate(
    *,
    weeks: int = 8,
    buildings: int = 2,
    zones: int = 3,
    clean_weeks: int = 4,
    per_kind: int = 4,
    seed: int = 7,
    start: datetime | None = None,
    noise: float = 0.04,
    strength: tuple[float, float] = (2.5, 4.0),
) -> tuple[Campus, list[Row]]:
    """The campus and its readings in time order; anomalies (labels) only after `clean_weeks`."""
    rng = random.Random(seed)
    campus = build_campus(rng, buildings, zones)
    begin = start or datetime(2024, 1, 1, tzinfo=TZ).astimezone(UTC)
    end = begin + timedelta(weeks=weeks)
    window = (begin + timedelta(weeks=clean_weeks), end)
    plan = _plan(rng, campus, window, per_kind, Plan(noise=noise, strength=strength))
    quiet = [m for m in campus.meters if m.series not in (*plan.extra, *plan.frozen, *campus.rollovers)]
    replaced = rng.choice(quiet or campus.meters[1:])
    replace_at = (begin + (end - begin) * 0.6).replace(minute=0, second=0, microsecond=0)
    rows: list[Row] = []
    at = begin
    while at < end:
        at += STEP
        for m in campus.meters:
            use = _use(rng, m, at, plan)
            if not _inside(plan.frozen.get(m.series), at):
                m.register += use
                if m.register >= m.register_max:
                    m.register -= m.register_max
            if m is replaced and at == replace_at:
                m.register = use  # the new meter starts from zero
                campus.replaced.add((m.series, at))
            if not _inside(plan.silent.get(m.series), at):
                rows.append((m.id, m.quantity, at, round(m.register, 3)))
        if at.minute == 0:
            for zone, _, _ in campus.hvac_zones:
                rows += _valves(rng, zone, at, begin, plan)
    return campus, rows


def write_csv(rows: list[Row], campus: Campus, path: Path) -> None:
    """The readings as a BMS export with Chinese headers (site time), as `hub ingest bms` reads it."""
    zone_of = {m.id: m for m in campus.meters}
    words = {"electricity_kwh": "电", "water_m3": "水", "heating_valve_pct": "热水阀开度",
             "cooling_valve_pct": "冷水阀开度"}  # fmt: skip
    with path.open("w", encoding="utf-8-sig", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["表计编号", "楼栋", "楼层", "区域", "计量类型", "抄表时间", "读数"])
        for meter, quantity, at, value in rows:
            m = zone_of.get(meter)
            zone = m.zone if m else meter.rsplit("-", 1)[0]
            building, floor = zone.split("-")[0], zone.split("-")[1]
            stamp = at.astimezone(TZ).strftime("%Y-%m-%d %H:%M")
            writer.writerow([meter, building, floor, zone, words[quantity], stamp, value])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weeks", type=int, default=52)
    parser.add_argument("--buildings", type=int, default=4)
    parser.add_argument("--zones", type=int, default=5)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--out", type=Path, default=Path("campus-readings.csv"))
    args = parser.parse_args()
    campus, rows = generate(weeks=args.weeks, buildings=args.buildings, zones=args.zones, seed=args.seed,
                            per_kind=max(4, args.weeks // 2))  # fmt: skip
    write_csv(rows, campus, args.out)
    labels = args.out.with_suffix(".labels.csv")
    with labels.open("w", encoding="utf-8", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["kind", "scope", "start", "end"])
        writer.writerows(
            (lb.kind, lb.scope, lb.start.isoformat(), lb.end.isoformat()) for lb in campus.labels
        )
    print(
        f"{len(rows)} readings of {len(campus.meters)} meters -> {args.out}; "
        f"{len(campus.labels)} labels -> {labels}"
    )


if __name__ == "__main__":
    main()
