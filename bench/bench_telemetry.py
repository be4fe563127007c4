"""Device telemetry at gateway rates: records per second into device_health, and its size with and
without the rollup.

    python -m bench.run bench_telemetry            (BENCH_SCALE shrinks or grows the sizes)

The stream: a PCD-01 gateway reporting each ventilator once a minute (one ORU^R01 per device-minute:
the MDS row by EUI-64, operating hours, power-on cycles, battery capacity and cycles, 4 coded
ventilation metrics, an alarm now and then), the shape bench/telemetry_synth.py writes a day at a
time. Measured in the same run:
- the read model alone: `DeviceHealth.apply` on SQLite (a file), 500 records a transaction (a
  projection batch), with the default 30-day raw window and with every record kept raw
  (`raw_days` 0); its ceiling: the same rows inserted into a plain table of the same columns by
  one executemany a batch (no dedupe, no device-days, no latest figures, no rollup);
- end to end: the gateway's messages as one file stored (`hub ingest his FILE`), translated into
  `asset.telemetry_recorded`, published on the embedded bus and projected (`drain`): records/s
  from store to queryable;
- the tables after N days of the stream for a few devices, the window at 7 days vs every record
  kept raw: rows and bytes (VACUUMed file), and the bytes a device-day costs in each.
CPU seconds (time.process_time) are reported beside wall time: the machine is shared.
"""

from __future__ import annotations

import random
import sqlite3
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from sqlalchemy import create_engine, func, select

from adapters.base import TranslateContext
from adapters.his import ADAPTER as HIS
from adapters.his.mapping import default_mapping
from bench.report import load_note
from bench.whole_hub import scaled
from hub.bootstrap import build_hub
from hub.pipeline import drain, ingest_path
from hub.ports import RawRecord
from hub.settings import Settings
from projections.device_health import DeviceHealth, DeviceHealthConfig
from projections.device_health.tables import METADATA, days, rollups, telemetry
from schemas.telemetry import AssetTelemetryRecorded

if TYPE_CHECKING:
    from bench.report import Report

TZ = ZoneInfo("Asia/Shanghai")
START = datetime(2024, 3, 1, tzinfo=TZ)
BATCH = 500  # records a transaction
UTF8 = "UNICODE UTF-8"
# (MDC code, unit code, typical value, spread): what a ventilator's gateway reports each minute.
METRICS = (
    ("151957^MDC_PRESS_AWAY_END_EXP_POS", "266048^MDC_DIM_CM_H2O", 6.0, 1.5),
    ("152664^MDC_VOL_AWAY_TIDAL", "263762^MDC_DIM_MILLI_L", 450.0, 40.0),
    ("151586^MDC_VENT_RESP_RATE", "264928^MDC_DIM_RESP_PER_MIN", 16.0, 3.0),
    ("150456^MDC_PULS_OXIM_SAT_O2", "262688^MDC_DIM_PERCENT", 96.0, 2.0),
)


class Gateway:
    """A PCD-01 gateway: one ORU^R01 per device-minute, minute after minute (the order it sends them)."""

    def __init__(self, devices: int, seed: int = 11) -> None:
        self.rng = random.Random(seed)
        rng = self.rng
        self.state = [
            {
                "hours": rng.uniform(5000, 30000),
                "cycles": rng.randint(300, 2000),
                "battery": rng.uniform(86, 99),
                "battery_cycles": rng.randint(50, 600),
            }
            for _ in range(devices)
        ]
        self.minute = 0

    def messages(self, minutes: int) -> list[str]:
        """The next `minutes` minutes of every device."""
        out = []
        for _ in range(minutes):
            out += [self._message(n, s) for n, s in enumerate(self.state)]
            self.minute += 1
        return out

    def _message(self, n: int, s: dict[str, Any]) -> str:
        rng = self.rng
        ts = (START + timedelta(minutes=self.minute)).strftime("%Y%m%d%H%M%S+0800")
        s["hours"] += 1 / 60
        s["battery"] -= 0.00002
        eui = f"0012A3FFFE{n + 1:06X}"
        cid = f"GW{self.minute:07d}{n:04d}"
        battery = s["battery"] + rng.gauss(0, 0.3)
        figures = (
            ("MDC_ATTR_TIME_PD_OP_CUMUL", f"{s['hours']:.2f}", "264352^MDC_DIM_HR"),
            ("MDC_ATTR_POWER_ON_CNT", s["cycles"], "262656^MDC_DIM_DIMLESS"),
            ("MDC_ATTR_BATT_CAP_FULL_PCT", f"{battery:.1f}", "262688^MDC_DIM_PERCENT"),
            ("MDC_ATTR_BATT_CYCLE_CNT", s["battery_cycles"], "262656^MDC_DIM_DIMLESS"),
        )
        obx = [f"OBX|1||70001^MDC_DEV_SYS_PT_VENT_MDS^MDC|1.0.0.0|||||||X|||||||{eui}^^{eui}^EUI-64"]
        for k, (code, value, unit) in enumerate(figures):
            obx.append(f"OBX|{2 + k}|NM|0^{code}^MDC|1.0.0.{k + 1}|{value}|{unit}^MDC|||||R|||{ts}")
        for k, (code, unit, mid, spread) in enumerate(METRICS):
            value = rng.gauss(mid, spread)
            obx.append(f"OBX|{6 + k}|NM|{code}^MDC|1.1.1.{k + 1}|{value:.1f}|{unit}^MDC|||||R|||{ts}")
        if rng.random() < 0.003:
            alarm = "196670^MDC_EVT_PRESS_AWAY_HI^MDC|1.1.1.9.1|气道压力高"
            obx.append(f"OBX|{len(obx) + 1}|ST|{alarm}|||PM|||F|||{ts}")
        return "\r".join([
            f"MSH|^~\\&|VENT_GW|XXRMYY|HUB|XXRMYY|{ts}||ORU^R01^ORU_R01|{cid}|P|2.6|||AL|NE||{UTF8}",
            "PV1|1|I|重症医学科",
            f"OBR|1|{cid}^VENT_GW|{cid}^VENT_GW|182777000^monitoring of patient^SNOMED-CT|||{ts}",
            *obx,
        ]) + "\r"  # fmt: skip


def translated(messages: list[str], name: str = "gw.hl7") -> list[AssetTelemetryRecorded]:
    """The messages as the HIS adapter translates a file of them (`name`: the file, which event ids
    are minted from with each message's position)."""
    payload = "".join(messages).encode("utf-8")
    mapping = default_mapping()
    ctx = TranslateContext(site="bench", tz=TZ, adapter_version=HIS.version, mapping_version=mapping.version)
    raw = RawRecord(raw_ref="bench", system="his", site="bench", message_id=name, sha256="0" * 64,
                    size=len(payload), transport="file", received_at=datetime(2024, 7, 1, tzinfo=UTC),
                    metadata={"filename": name})  # fmt: skip
    out = HIS.translate(raw, payload, mapping, ctx)
    events = [e.event for e in out.events if isinstance(e.event, AssetTelemetryRecorded)]
    if len(events) != len(messages):
        raise RuntimeError(f"{len(messages)} messages gave {len(events)} records: {out.failures[:1]}")
    return events


def _engine(path: Path) -> Any:
    engine = create_engine(f"sqlite:///{path}")
    METADATA.create_all(engine)
    return engine


def apply_rate(events: list[AssetTelemetryRecorded], path: Path, raw_days: int) -> tuple[float, float]:
    """(records/s wall, records per CPU second) of DeviceHealth.apply, BATCH records a transaction."""
    engine = _engine(path)
    model = DeviceHealth(DeviceHealthConfig(tz=TZ, raw_days=raw_days))
    wall, cpu = time.perf_counter(), time.process_time()
    for i in range(0, len(events), BATCH):
        with engine.begin() as conn:
            model.apply(conn, events[i : i + BATCH])
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    engine.dispose()
    return len(events) / wall, len(events) / cpu


def ceiling(events: list[AssetTelemetryRecorded], path: Path) -> tuple[float, float]:
    """The same rows (as the model builds them) into a plain table, one executemany a batch:
    (records/s wall, records per CPU second)."""
    model = DeviceHealth(DeviceHealthConfig(tz=TZ))
    db = sqlite3.connect(path)
    cols = [c.name for c in telemetry.c]
    db.execute(f"CREATE TABLE t ({', '.join(cols)}, PRIMARY KEY (event_id))")
    insert = f"INSERT OR IGNORE INTO t VALUES ({', '.join('?' for _ in cols)})"
    wall, cpu = time.perf_counter(), time.process_time()
    for i in range(0, len(events), BATCH):
        rows = [model._row(e) for e in events[i : i + BATCH]]  # the very rows apply builds
        with db:
            db.executemany(
                insert, [tuple(str(r[c]) if c in {"at", "day"} else r[c] for c in cols) for r in rows]
            )
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    db.close()
    return len(events) / wall, len(events) / cpu


async def end_to_end(messages: list[str], folder: Path) -> tuple[float, float, int]:
    """`hub ingest his FILE` of the gateway's messages, to queryable device_health:
    (records/s wall, records per CPU second of this process, records stored)."""
    path = folder / "gateway.hl7"
    path.write_text("".join(messages), encoding="utf-8")
    settings = Settings(data_dir=folder / "hub", auth="off")
    async with build_hub(settings) as hub:
        wall, cpu = time.perf_counter(), time.process_time()
        await ingest_path(hub, "his", path)
        await drain(hub)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        with hub.engine.connect() as conn:
            stored = int(conn.execute(select(func.coalesce(func.sum(days.c.records), 0))).scalar_one())
    return stored / wall, stored / cpu, stored


def sizes(devices: int, day_count: int, folder: Path) -> dict[int, tuple[int, int, int, int, float]]:
    """After `day_count` days of the stream: raw_days -> (raw rows, rollup rows, day rows, bytes,
    records per CPU second of the applies, compactions included)."""
    out = {}
    per_day = 24 * 60
    for raw_days in (7, 0):
        path = folder / f"size-{raw_days}.db"
        engine = _engine(path)
        model = DeviceHealth(DeviceHealthConfig(tz=TZ, raw_days=raw_days))
        gateway = Gateway(devices)
        cpu = 0.0
        for day in range(day_count):
            # a day at a time: the messages of one day, translated, applied in batches
            events = translated(gateway.messages(per_day), f"gw-day-{day}.hl7")
            started = time.process_time()
            for i in range(0, len(events), BATCH):
                with engine.begin() as conn:
                    model.apply(conn, events[i : i + BATCH])
            cpu += time.process_time() - started
        with engine.connect() as conn:
            counts = [int(conn.execute(select(func.count()).select_from(t)).scalar_one())
                      for t in (telemetry, rollups, days)]  # fmt: skip
        engine.dispose()
        db = sqlite3.connect(path)
        db.execute("VACUUM")
        db.close()
        out[raw_days] = (*counts, path.stat().st_size, devices * per_day * day_count / cpu)
    return out


async def run(report: Report) -> None:
    devices = scaled(20, 2)
    minutes = scaled(600, 60)
    with tempfile.TemporaryDirectory(prefix="bench-telemetry-") as tmp:
        folder = Path(tmp)
        messages = Gateway(devices).messages(minutes)
        events = translated(messages)
        count = len(events)
        top_wall, top_cpu = ceiling(events, folder / "ceiling.db")
        stream = f"{count} records: {devices} ventilators x {minutes} min, 9 coded figures each"
        for raw_days, what in ((30, "30-day raw window, rollup on"), (0, "every record kept raw")):
            wall, cpu = apply_rate(events, folder / f"apply-{raw_days}.db", raw_days)
            report.add(
                "telemetry",
                f"device_health apply at gateway rates ({what}, {BATCH} a batch)",
                cpu,
                "records/CPU-s",
                peer=top_cpu,
                peer_label="the same rows, one SQLite executemany a batch",
                note=f"{stream}; wall {wall:,.0f}/s (peer {top_wall:,.0f}/s)",
            )
        wall, cpu, stored = await end_to_end(messages, folder)
        report.add(
            "telemetry",
            "end to end: hub ingest his FILE (PCD-01, an ORU^R01 a device-minute) to queryable device_health",
            cpu,
            "records/CPU-s",
            aim="far above a gateway's rate (200 ventilators: 3.3 records/s)",
            note=f"{stored} of {count} records; wall {wall:,.0f}/s; {load_note()}",
        )
        few, day_count = scaled(2, 1), scaled(14, 9)
        found = sizes(few, day_count, folder)
        rolled, kept = found[7], found[0]
        rows = "rows raw/rollup/day " + " vs ".join("/".join(f"{n:,}" for n in x[:3]) for x in (rolled, kept))
        raw_day = kept[3] / (few * day_count)
        per_day = f"~{_per_day(rolled, kept):,.0f} bytes rolled up vs ~{raw_day:,.0f} raw"
        report.add(
            "telemetry",
            f"device_health size after {day_count} days ({few} devices x 1/min), raw window 7 days",
            rolled[3] / 1024,
            "KiB",
            peer=kept[3] / 1024,
            peer_label="every record kept raw",
            note=f"{rows}; a device-day beyond the window {per_day}; "
            f"apply with compaction {rolled[4]:,.0f} vs {kept[4]:,.0f} records/CPU-s",
        )


def _per_day(rolled: tuple[float, ...], kept: tuple[float, ...]) -> float:
    """Bytes a device-day costs once rolled up: the rolled-up database less its raw records (at the
    bytes a raw record costs where all are kept), over the device-days rolled up."""
    per_record = kept[3] / kept[0]
    rolled_days = (kept[0] - rolled[0]) / (24 * 60)
    return (rolled[3] - rolled[0] * per_record) / max(rolled_days, 1e-9)
