"""ESU^U01 (automated equipment status update): each EQU -> `asset.status_changed`.

- subject: EQU-1 (equipment instance identifier, an EI) resolved through the mapping's
  `namespaces` (adapters/his/identifiers.py): `ZC2019007^HRP` is the HRP card ZC2019007, so the
  status lands on the ledger's asset; a bare value is `his.code`;
- status: EQU-3.1 through the mapping's `equipment_states` (HL7 table 0365 and local codes);
  an unknown state fails the unit when `strict` lists equipment_state, else it is `unknown`;
  `status_text` keeps the source's wording (EQU-3.2, else the code);
- reason: EQU-5 alert level text, when the device sent one;
- occurred_at: EQU-2, else MSH-7;
- an alert level W, S or C (EQU-5, HL7 table 0367) also records `asset.telemetry_recorded` with
  that alarm (adapters/his/telemetry.py), for the device-health rules.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from adapters.his.context import MessageContext, UnitProblem
from adapters.his.identifiers import EntityId, resolve
from adapters.his.telemetry import equipment_alert
from schemas.assets import AssetStatus, AssetStatusChanged, StatusChangedPayload
from schemas.ids import asset_id_for

if TYPE_CHECKING:
    from adapters.his.tokenize import Segment


def translate_equipment(mc: MessageContext) -> None:
    segments = mc.message.segments("EQU")
    if not segments:
        mc.skip(f"{mc.type_label} has no EQU segment")
    for occurrence, equ in enumerate(segments, 1):
        position = mc.position(equ, occurrence)
        mc.units += 1
        try:
            _status(mc, equ, position)
        except UnitProblem as problem:
            mc.fail(position, problem)


def _status(mc: MessageContext, equ: Segment, position: str) -> None:
    equipment = resolve(mc.mapping, EntityId.read(equ, 1), "his.code")
    if equipment is None:
        raise UnitProblem(equ, "EQU-1", "missing_field", "EQU-1 (equipment instance identifier) is empty")
    code, text = equ.field(3, 1).strip(), equ.field(3, 2).strip()
    if not code:
        raise UnitProblem(equ, "EQU-3", "missing_field", "EQU-3 (equipment state) is empty")
    status = mc.mapping.equipment_state(code)
    if status is None:
        if mc.mapping.is_strict("equipment_state"):
            raise UnitProblem(
                equ,
                "EQU-3",
                "unknown_code",
                f"EQU-3: equipment state {code!r} is not in the mapping (strict: equipment_state)",
            )
        status = AssetStatus.UNKNOWN
    occurred = mc.first_time((equ, 2, 1))
    alert = equ.field(5, 2).strip() or equ.field(5, 1).strip()
    mc.emit(
        position,
        equ,
        lambda: AssetStatusChanged(
            event_id=mc.event_id(position),
            occurred_at=occurred,
            recorded_at=mc.raw.received_at,
            source=mc.source,
            subject=asset_id_for(equipment),
            payload=StatusChangedPayload(status=status, status_text=text or code, reason=alert or None),
        ),
    )
    equipment_alert(mc, equ, position, equipment, occurred)
