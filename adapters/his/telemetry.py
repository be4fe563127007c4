"""IHE PCD-01 ORU^R01 / PCD-04 ORU^R40 device observations, and ESU^U01 alert levels ->
`asset.telemetry_recorded`, one per device per message.

- Which OBX: OBX-3 coded in one of the mapping's `telemetry.coding_systems` (MDC) or a listed code.
- Which device: OBX-18 (each repetition naming equipment, see adapters/his/identifiers.py: an
  EUI-64 `0012A3FFFE4B5C6D^^0012A3FFFE4B5C6D^EUI-64` is scheme `eui64`); an OBX without one hangs
  under the MDS of its OBX-4 sub-id (`1.0.0.0` and `1.2.1.3` share MDS 1, PCD-01's containment
  tree), so one identifier on the MDS row names the whole tree. An observation of no device is
  skipped with a reason, never given an invented one; an unknown device is kept: its subject is
  minted from the identifier and the registry merges it when the identifier is linked.
- What: `telemetry.codes` (OBX-3.2 reference id, else OBX-3.1) say which OBX is usage hours,
  power-on cycles, battery capacity or cycles, an error code; battery capacity in % is sent as
  such or worked out from the 11073 full-charge and design capacities (same unit); codes with an alarm prefix
  (`MDC_EVT_`) are alarms, their priority from OBX-8 (PH/PM/PL, table 0078 H/L as high/low).
  Every coded observation is kept in `metrics` with its unit (OBX-6.2, else 6.1).
- device_type: OBX-3.2 of the MDS row (`MDC_DEV_..._MDS`); occurred_at: the latest OBX-14 of
  the device, else OBR-7, else MSH-7; department: PV1-3 through the mapping.

ESU^U01: an EQU whose EQU-5 alert level (HL7 table 0367) is W, S or C also records an alarm
(`EQU-ALERT-<level>`, the text of EQU-5.2) on that device.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING

from adapters.his.context import MessageContext, UnitProblem
from adapters.his.identifiers import EntityId, equipment_in_obx
from schemas.ids import asset_id_for
from schemas.telemetry import (
    AlarmPriority,
    AssetTelemetryRecorded,
    DeviceCode,
    TelemetryMetric,
    TelemetryRecordedPayload,
)

if TYPE_CHECKING:
    from datetime import datetime

    from adapters.his.tokenize import Segment
    from schemas._base import DeptRef, Identifier

_PRIORITY: dict[str, AlarmPriority] = {
    "PH": "high", "PM": "medium", "PL": "low", "PI": "info", "HH": "high", "LL": "high",
    "H": "medium", "L": "medium", "A": "medium", "AA": "high",
}  # fmt: skip
_ALERT_LEVEL: dict[str, AlarmPriority] = {"W": "medium", "S": "high", "C": "high"}
_NUMERIC = {"NM", "SN", "NA", ""}


@dataclass
class _Report:
    identifier: Identifier
    position: str
    segment: Segment
    device_type: str | None = None
    times: list[Segment] = field(default_factory=list)
    metrics: list[TelemetryMetric] = field(default_factory=list)
    alarms: list[DeviceCode] = field(default_factory=list)
    errors: list[DeviceCode] = field(default_factory=list)
    figures: dict[str, Decimal] = field(default_factory=dict)
    units: dict[str, str | None] = field(default_factory=dict)


def translate_telemetry(mc: MessageContext) -> None:
    """The telemetry of every device the message's MDC-coded OBX describe (see the module doc)."""
    rules = mc.mapping.telemetry
    reports: dict[tuple[str, str], _Report] = {}
    under: dict[str, _Report] = {}  # MDS sub-id -> the device of that containment tree
    orphans = 0
    for occurrence, obx in enumerate(mc.message.segments("OBX"), 1):
        system, ref_id, code = obx.field(3, 3).strip(), obx.field(3, 2).strip(), obx.field(3, 1).strip()
        name = ref_id or code
        if not name or not rules.is_device_code(system, name):
            continue
        mds = obx.field(4).strip().split(".", 1)[0]
        report = _device(mc, obx, occurrence, reports)
        if report is None:
            report = under.get(mds)
        elif mds:
            under.setdefault(mds, report)
        if report is None:
            orphans += 1
            continue
        if name.startswith("MDC_DEV_") and report.device_type is None:
            report.device_type = name
        report.times.append(obx)
        _observe(mc, obx, name, system or "MDC", report)
    if orphans:
        mc.skip(f"{orphans} device observation(s) name no device (no OBX-18 on them or their MDS)")
    for report in reports.values():
        mc.units += 1
        try:
            _emit(mc, report)
        except UnitProblem as problem:
            mc.fail(f"{report.position}/telemetry", problem)


def _device(
    mc: MessageContext, obx: Segment, occurrence: int, reports: dict[tuple[str, str], _Report]
) -> _Report | None:
    for rep in range(obx.repetitions(18)):
        identifier = equipment_in_obx(mc.mapping, EntityId.read(obx, 18, rep))
        if identifier is None:
            continue
        key = (identifier.scheme, identifier.value)
        if key not in reports:
            reports[key] = _Report(identifier, mc.position(obx, occurrence), obx)
        return reports[key]
    return None


def _observe(mc: MessageContext, obx: Segment, name: str, system: str, report: _Report) -> None:
    rules = mc.mapping.telemetry
    kind = obx.field(2).strip().upper()
    raw_value = obx.field(5, 1).strip()
    unit = obx.field(6, 2).strip() or obx.field(6, 1).strip() or None
    value = _number(raw_value) if kind in _NUMERIC else None
    text = None if value is not None else (obx.field(5, 2).strip() or raw_value or None)
    role = rules.role(name)
    if role == "alarm":
        flag = obx.field(8).strip().upper()
        report.alarms.append(DeviceCode(code=name, text=text, priority=_PRIORITY.get(flag)))
        return
    if role == "error_code":
        if raw_value:
            report.errors.append(DeviceCode(code=raw_value, text=obx.field(5, 2).strip() or None))
        return
    if name.startswith("MDC_DEV_"):
        return  # the containment rows (MDS, VMD, channel) carry no value of their own
    report.metrics.append(TelemetryMetric(code=name, system=system, value=value, unit=unit, text=text))
    if role is not None and value is not None:
        report.figures[role] = value
        report.units[role] = unit


_PERCENT = Decimal("0.1")


def _capacity_pct(report: _Report) -> Decimal | None:
    """Battery capacity in %: as sent, else full-charge over design capacity in the same unit."""
    figures = report.figures
    if "battery_capacity_pct" in figures:
        return figures["battery_capacity_pct"]
    full, design = figures.get("battery_full_capacity"), figures.get("battery_design_capacity")
    if full is None or not design or design < 0 or full < 0:
        return None
    if report.units.get("battery_full_capacity") != report.units.get("battery_design_capacity"):
        return None  # mAh over Ah would be off by 1000: no figure rather than a wrong one
    return (full * 100 / design).quantize(_PERCENT)


def _number(text: str) -> Decimal | None:
    try:
        value = Decimal(text)
    except InvalidOperation:
        return None
    return value if value.is_finite() else None


def _emit(mc: MessageContext, report: _Report) -> None:
    times: list[datetime] = []
    for obx in report.times:
        value = mc.timestamp(obx, 14)
        if value is not None:
            times.append(value)
    occurred = max(times) if times else mc.first_time((mc.message.segment("OBR"), 7, 1))
    figures = report.figures
    cycles = figures.get("power_on_cycles")
    battery_cycles = figures.get("battery_cycles")
    position = f"{report.position}/telemetry"
    department = _department(mc)
    mc.emit(
        position,
        report.segment,
        lambda: AssetTelemetryRecorded(
            event_id=mc.event_id(position),
            occurred_at=occurred,
            recorded_at=mc.raw.received_at,
            source=mc.source,
            subject=asset_id_for(report.identifier),
            payload=TelemetryRecordedPayload(
                device=report.identifier,
                device_type=report.device_type,
                department=department,
                usage_hours=figures.get("usage_hours"),
                power_on_cycles=None if cycles is None else int(cycles),
                battery_capacity_pct=_capacity_pct(report),
                battery_cycles=None if battery_cycles is None else int(battery_cycles),
                alarms=report.alarms,
                error_codes=report.errors,
                metrics=report.metrics,
            ),
        ),
    )


def equipment_alert(
    mc: MessageContext, equ: Segment, position: str, identifier: Identifier, occurred: datetime
) -> None:
    """An ESU^U01 EQU with a warning, serious or critical alert level (EQU-5) as an alarm."""
    level = equ.field(5, 1).strip().upper()
    priority = _ALERT_LEVEL.get(level)
    if priority is None:
        return
    text = equ.field(5, 2).strip() or None
    where = f"{position}/telemetry"
    mc.emit(
        where,
        equ,
        lambda: AssetTelemetryRecorded(
            event_id=mc.event_id(where),
            occurred_at=occurred,
            recorded_at=mc.raw.received_at,
            source=mc.source,
            subject=asset_id_for(identifier),
            payload=TelemetryRecordedPayload(
                device=identifier,
                alarms=[DeviceCode(code=f"EQU-ALERT-{level}", text=text, priority=priority)],
            ),
        ),
    )


def _department(mc: MessageContext) -> DeptRef | None:
    pv1 = mc.message.segment("PV1")
    point = pv1.field(3, 1, 0, 1).strip() if pv1 is not None else ""
    if pv1 is None or not point:
        return None
    department = mc.place(pv1, "PV1-3", point).department
    return department if department.code or department.name else None
