"""ORU^R01, ORM^O01, OMG^O19: a device named in the message -> `asset.used`, one per device.

A device is named by OBX-18 (equipment instance identifier, each repetition) or by a PRT whose
PRT-4 role is one of the mapping's `equipment_roles` (PRT-10, else PRT-16: the UDI). Both are EIs
resolved through the mapping's `namespaces` (adapters/his/identifiers.py): `VENT-0032^HIS` is
`his.code`, `ZC2019007^HRP` the HRP card, `...^EUI-64` an `eui64`; a bare OBX-18 value is
`his.code`, a bare PRT value `udi`. OBX-18 counts only when it looks like equipment (an EUI-64,
a listed namespace or a value matching `devices.equipment_patterns`): an analyser's
reference-range limits there (`3`, `1`, `5`) are skipped with a reason, not made into devices.
A ventilator that stamps all forty OBX of a result is one use, at the
position of its first mention (`OBX:<n>` or `PRT:<n>`), spanning the times of all its mentions:

- started_at / ended_at: earliest and latest OBX-14, or PRT-11 / PRT-12;
- occurred_at: started_at, else OBR-7 of the order, else MSH-7;
- department: PV1-3 point of care (via the mapping); order_id: ORC-2.1, else OBR-2.1, else
  OBR-3.1 of the order the mention belongs to; procedure_code: its OBR-4.1;
- patient: only as `patient_token`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from adapters.his.context import MessageContext, UnitProblem
from adapters.his.identifiers import EntityId, equipment_in_obx, resolve
from schemas.assets import AssetUsed, UsedPayload
from schemas.ids import asset_id_for

if TYPE_CHECKING:
    from datetime import datetime

    from adapters.his.tokenize import Segment
    from schemas._base import DeptRef, Identifier


@dataclass
class _Device:
    identifier: Identifier
    position: str
    segment: Segment
    orc: Segment | None
    obr: Segment | None
    times: list[tuple[Segment, int]] = field(default_factory=list)


def translate_devices(mc: MessageContext) -> None:
    scan = _Scan(mc)
    for segment in mc.message.segment_list:
        scan.visit(segment)
    if scan.ignored:
        mc.skip(
            f"{scan.ignored} OBX-18 value(s) not taken as equipment: no EUI-64, no namespace in the "
            "mapping, no match for devices.equipment_patterns"
        )
    if not scan.devices and not mc.failures:
        mc.skip(f"{mc.type_label} names no device (no OBX-18, no equipment PRT)", *mc.message.segment_list)
    for device in scan.devices.values():
        mc.units += 1
        try:
            _used(mc, device)
        except UnitProblem as problem:
            mc.fail(device.position, problem)


class _Scan:
    """One pass over the segments: devices by identifier, each with the order it belongs to."""

    def __init__(self, mc: MessageContext) -> None:
        self.mc = mc
        self.devices: dict[tuple[str, str], _Device] = {}
        self.roles = {r.upper() for r in mc.mapping.devices.equipment_roles}
        self.orc: Segment | None = None
        self.obr: Segment | None = None
        self.counts: dict[str, int] = {}
        self.ignored = 0  # OBX-18 values that do not look like equipment

    def visit(self, segment: Segment) -> None:
        kind = segment.id
        if kind == "ORC":
            self.orc, self.obr = segment, None
        elif kind == "OBR":
            self.obr = segment
        elif kind in {"OBX", "PRT"}:
            self.counts[kind] = occurrence = self.counts.get(kind, 0) + 1
            if kind == "OBX":
                self._obx(segment, occurrence)
            else:
                self._prt(segment, occurrence)

    def _obx(self, obx: Segment, occurrence: int) -> None:
        for rep in range(obx.repetitions(18)):
            ei = EntityId.read(obx, 18, rep)
            if not ei.value and not ei.universal_id:
                continue
            suffix = f"~{rep + 1}" if rep else ""
            position = self.mc.position(obx, occurrence, suffix)
            identifier = equipment_in_obx(self.mc.mapping, ei)
            if identifier is None:
                self.ignored += 1
                continue
            device = self._note(identifier, obx, position)
            device.times.append((obx, 14))

    def _prt(self, prt: Segment, occurrence: int) -> None:
        if prt.field(4, 1).strip().upper() not in self.roles:
            return
        position = self.mc.position(prt, occurrence)
        ei = EntityId.read(prt, 10)
        if not ei.value and not ei.universal_id:
            ei = EntityId.read(prt, 16)
        identifier = resolve(self.mc.mapping, ei, "udi")
        if identifier is None:
            self.mc.units += 1
            problem = UnitProblem(
                prt, "PRT-10", "missing_field", "PRT-10 (device) is empty for an equipment role"
            )
            self.mc.fail(position, problem)
            return
        device = self._note(identifier, prt, position)
        device.times += [(prt, 11), (prt, 12)]

    def _note(self, identifier: Identifier, segment: Segment, position: str) -> _Device:
        key = (identifier.scheme, identifier.value)
        if key not in self.devices:
            self.devices[key] = _Device(identifier, position, segment, self.orc, self.obr)
        return self.devices[key]


def _used(mc: MessageContext, device: _Device) -> None:
    times: list[datetime] = []
    for segment, n in device.times:
        value = mc.timestamp(segment, n)
        if value is not None:
            times.append(value)
    started = min(times) if times else None
    ended = max(times) if len(times) > 1 and max(times) > min(times) else None
    occurred = started or mc.first_time((device.obr, 7, 1))
    department = _department(mc)
    order_id = ""
    if device.orc is not None:
        order_id = device.orc.field(2, 1).strip()
    if not order_id and device.obr is not None:
        order_id = device.obr.field(2, 1).strip() or device.obr.field(3, 1).strip()
    procedure = device.obr.field(4, 1).strip() if device.obr is not None else ""
    patient = mc.patient()
    mc.emit(
        device.position,
        device.segment,
        lambda: AssetUsed(
            event_id=mc.event_id(device.position),
            occurred_at=occurred,
            recorded_at=mc.raw.received_at,
            source=mc.source,
            subject=asset_id_for(device.identifier),
            payload=UsedPayload(
                started_at=started,
                ended_at=ended,
                department=department,
                procedure_code=procedure or None,
                order_id=order_id or None,
                patient_token=patient,
            ),
        ),
    )


def _department(mc: MessageContext) -> DeptRef | None:
    pv1 = mc.message.segment("PV1")
    point = pv1.field(3, 1, 0, 1).strip() if pv1 is not None else ""
    if pv1 is None or not point:
        return None
    department = mc.place(pv1, "PV1-3", point).department
    return department if department.code or department.name else None  # unknown: kept, noted
