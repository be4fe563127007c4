"""Synthetic device telemetry: a ventilator fleet's daily device logs, with labelled degradations.

    python -m bench.telemetry_synth --devices 60 --days 90 --out fleet.csv --labels labels.csv
        [--hl7 fleet.hl7]

Each ventilator (EUI-64, serial, department) writes one log row a day, as a vendor's device log
export with Chinese headers: cumulative operating hours (8-22 h a day in use), power-on cycles,
battery full-charge capacity (slow natural fade, reading noise) and battery cycles, the day's
alarm count (each device has its own alarm habit: a lognormal rate, so the fleet is not uniform)
and error codes (rare sporadic codes, so an unlucky code can come twice). Each device has a
last preventive maintenance date on record (the registry's).

Injected and labelled (device, category), each on about an eighth of the fleet, in the last
weeks: `battery` (capacity fading 0.3-0.7 points a day), `errors` (one code on 4-7 days of the
last two weeks), `alarms` (an alarm storm: 3-6x the device's rate for the last 5-10 days) and
`usage` (preventive maintenance overdue: more than 2,000 operating hours since the last PM).
Seeded: the same arguments give the same data.
"""

from __future__ import annotations

import argparse
import csv
import math
import random
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

TZ = ZoneInfo("Asia/Shanghai")
START = date(2024, 3, 1)
DEVICE_TYPE = "MDC_DEV_SYS_PT_VENT_MDS"
MODEL = "SV-800"
DEPARTMENTS = ("重症医学科", "急诊科", "呼吸与危重症医学科", "麻醉科")
ERROR_CODES = tuple(f"E-{n}" for n in (101, 117, 203, 217, 305, 318, 402, 415, 509, 521, 610, 733))
PM_INTERVAL_HOURS = 2000.0
HEADERS = (
    "设备序列号", "EUI-64", "设备型号", "使用科室", "记录时间", "累计运行时间(h)", "开机次数",
    "电池容量(%)", "电池循环次数", "报警次数", "错误代码",
)  # fmt: skip
CATEGORIES = ("battery", "errors", "alarms", "usage")


@dataclass(frozen=True, slots=True)
class Row:
    serial: str
    eui64: str
    department: str
    at: datetime
    usage_hours: float
    power_on_cycles: int
    battery_pct: float
    battery_cycles: int
    alarms: int
    errors: tuple[str, ...]


@dataclass(slots=True)
class Fleet:
    rows: list[Row] = field(default_factory=list)
    last_pm: dict[str, date] = field(default_factory=dict)  # eui64 -> last PM on record
    labels: set[tuple[str, str]] = field(default_factory=set)  # (eui64, category)
    devices: list[tuple[str, str, str]] = field(default_factory=list)  # (eui64, serial, department)


def eui64_of(n: int) -> str:
    return f"0012A3FFFE{n:06X}"


def generate(devices: int = 60, days: int = 90, seed: int = 7, share: float = 0.125) -> Fleet:
    """The fleet (see the module docstring). `share`: the fraction of devices per injected kind."""
    rng = random.Random(seed)
    fleet = Fleet()
    per_kind = round(devices * share)
    chosen = rng.sample(range(devices), min(devices, per_kind * len(CATEGORIES)))
    kinds: dict[int, str] = {n: CATEGORIES[i // per_kind] for i, n in enumerate(chosen)}
    for n in range(devices):
        eui = eui64_of(n + 1)
        serial = f"SV8-{2019 + n % 5}{n + 1:04d}"
        department = DEPARTMENTS[n % len(DEPARTMENTS)]
        fleet.devices.append((eui, serial, department))
        kind = kinds.get(n)
        if kind is not None:
            fleet.labels.add((eui, kind))
        fleet.rows += _device_rows(rng, eui, serial, department, days, kind, fleet)
    return fleet


def _device_rows(  # noqa: PLR0917  (one device's identity and fate, all needed here)
    rng: random.Random, eui: str, serial: str, department: str, days: int, kind: str | None, fleet: Fleet
) -> list[Row]:
    daily_hours = rng.uniform(8, 22)
    alarm_rate = math.exp(rng.gauss(math.log(2.5), 0.45))
    battery = rng.uniform(86, 99)
    natural_fade = rng.uniform(0.0, 0.04)
    hours = rng.uniform(5000, 30000)
    cycles = rng.randint(300, 2000)
    battery_cycles = rng.randint(50, 600)
    # The last PM: hours since it by the end stay under the interval, unless PM is overdue.
    budget = PM_INTERVAL_HOURS * rng.uniform(0.2, 0.8)
    if kind == "usage":
        budget = PM_INTERVAL_HOURS * rng.uniform(1.1, 1.6)
    # (it may lie before the window: the rule then extrapolates the device's daily use)
    fleet.last_pm[eui] = START + timedelta(days=days - 1 - int(budget / daily_hours))
    fade_from = rng.randint(days - 40, days - 25)
    fade_rate = rng.uniform(0.3, 0.7)
    storm_from = days - rng.randint(5, 10)
    storm_factor = rng.uniform(3, 6)
    error_code = rng.choice(ERROR_CODES)
    error_days = set(rng.sample(range(days - 14, days), rng.randint(4, 7)))
    rows = []
    for d in range(days):
        day = START + timedelta(days=d)
        use = max(0.0, rng.gauss(daily_hours, 2.0))
        hours += use
        cycles += 1 if rng.random() < 0.8 else 2
        battery -= natural_fade + (fade_rate if kind == "battery" and d >= fade_from else 0.0)
        battery_cycles += 1 if rng.random() < 0.3 else 0
        rate = alarm_rate * (storm_factor if kind == "alarms" and d >= storm_from else 1.0)
        errors = [rng.choice(ERROR_CODES)] if rng.random() < 0.03 else []
        if kind == "errors" and d in error_days:
            errors.append(error_code)
        rows.append(
            Row(
                serial, eui, department, datetime.combine(day, time(23, 50), TZ), round(hours, 1), cycles,
                round(battery + rng.gauss(0, 0.6), 1), battery_cycles, _poisson(rng, rate), tuple(errors),
            )
        )  # fmt: skip
    return rows


def _poisson(rng: random.Random, lam: float) -> int:
    """Knuth's method: fine for the small rates of a device's alarms per day."""
    limit, k, p = math.exp(-lam), 0, 1.0
    while True:
        p *= rng.random()
        if p <= limit:
            return k
        k += 1


def write_csv(fleet: Fleet, path: Path) -> None:
    """The fleet as a vendor device-log export (UTF-8 with BOM, Chinese headers)."""
    with path.open("w", encoding="utf-8-sig", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(HEADERS)
        for r in fleet.rows:
            writer.writerow([
                r.serial, r.eui64, MODEL, r.department, r.at.strftime("%Y-%m-%d %H:%M"),
                f"{r.usage_hours:.1f}", r.power_on_cycles, f"{r.battery_pct:.1f}", r.battery_cycles,
                r.alarms, ";".join(r.errors),
            ])  # fmt: skip


UTF8 = "UNICODE UTF-8"


def hl7_messages(fleet: Fleet) -> list[str]:
    """The fleet as IHE PCD-01 ORU^R01 messages, one per device-day (what a gateway would send over
    MLLP): the MDS row names the ventilator by EUI-64 in OBX-18, the device's counters and battery
    as MDC-coded OBX under it, each alarm of the day as an `MDC_EVT_` OBX, each error code as one."""
    out = []
    for n, r in enumerate(fleet.rows, 1):
        ts = r.at.strftime("%Y%m%d%H%M%S+0800")
        cid = f"SYN{n:08d}"
        obx = [
            f"OBX|1||70001^MDC_DEV_SYS_PT_VENT_MDS^MDC|1.0.0.0|||||||X|||||||{r.eui64}^^{r.eui64}^EUI-64",
            f"OBX|2|NM|0^MDC_ATTR_TIME_PD_OP_CUMUL^MDC|1.0.0.1|{r.usage_hours:.1f}|264352^MDC_DIM_HR^MDC|||||R|||{ts}",
            f"OBX|3|NM|0^MDC_ATTR_POWER_ON_CNT^MDC|1.0.0.2|{r.power_on_cycles}|262656^MDC_DIM_DIMLESS^MDC|||||R|||{ts}",
            f"OBX|4|NM|0^MDC_ATTR_BATT_CAP_FULL_PCT^MDC|1.0.0.3|{r.battery_pct:.1f}|262688^MDC_DIM_PERCENT^MDC|||||R|||{ts}",
            f"OBX|5|NM|0^MDC_ATTR_BATT_CYCLE_CNT^MDC|1.0.0.4|{r.battery_cycles}|262656^MDC_DIM_DIMLESS^MDC|||||R|||{ts}",
        ]
        error = "0^MDC_ATTR_DEV_ERR_CODE^MDC|1.0.0.5"
        obx += [
            f"OBX|{len(obx) + 1 + k}|CWE|{error}|{code}^^VENDOR||||||R|||{ts}"
            for k, code in enumerate(r.errors)
        ]
        alarm = "196670^MDC_EVT_PRESS_AWAY_HI^MDC"
        obx += [
            f"OBX|{len(obx) + 1 + k}|ST|{alarm}|1.1.1.1.{k + 1}|气道压力高|||PM|||F|||{ts}"
            for k in range(r.alarms)
        ]
        out.append(
            "\r".join(
                [
                    f"MSH|^~\\&|VENT_GW|XXRMYY|HUB|XXRMYY|{ts}||ORU^R01^ORU_R01|{cid}|P|2.6|||AL|NE||{UTF8}",
                    f"PV1|1|I|{r.department}",
                    f"OBR|1|{cid}^VENT_GW|{cid}^VENT_GW|182777000^monitoring of patient^SNOMED-CT|||{ts}",
                    *obx,
                ]
            )
            + "\r"
        )
    return out


def write_labels(fleet: Fleet, path: Path) -> None:
    with path.open("w", encoding="utf-8", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["eui64", "category", "last_pm"])
        for eui, category in sorted(fleet.labels):
            writer.writerow([eui, category, fleet.last_pm[eui].isoformat()])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=60)
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--labels", type=Path)
    parser.add_argument("--hl7", type=Path, help="also write the fleet as PCD-01 messages (one file)")
    args = parser.parse_args(argv)
    fleet = generate(args.devices, args.days, args.seed)
    write_csv(fleet, args.out)
    if args.labels:
        write_labels(fleet, args.labels)
    if args.hl7:
        args.hl7.write_text("".join(hl7_messages(fleet)), encoding="utf-8")
    print(f"{len(fleet.rows)} rows, {len(fleet.devices)} devices, {len(fleet.labels)} labelled degradations")


if __name__ == "__main__":
    main()
