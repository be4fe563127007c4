"""DFT^P03 / DFT^P11: an FT1 charge of a tracked consumable -> `inventory.consumed`.

Per FT1 (position `FT1:<n>`, n = HL7 segment sequence) and the segments after it up to the next
FT1 (its PRT, PR1, Z-segments):

- item: FT1-7.1 (transaction code), subject = item_id_for("his", code); the code and its text
  FT1-7.2 travel on the event (`item_code`, `item_name`): the inventory read model defines from
  them an item the HIS item master (MFN^M16) never defined (flagged provisional);
- UDI: PRT-10.1 (else PRT-16.1) of the first PRT after the FT1, else the mapping's `udi_field`;
  parsed as a barcode with biip, kept verbatim (and flagged) when it is not GS1;
- consumable or not: the mapping's `charges.consumables` rule (UDI and/or listed codes);
- quantity FT1-10 (> 0), transaction type FT1-6 must be a listed charge type;
- department: FT1-13 (code^name), else FT1-16 point of care, else PV1-3 point of care;
- charge id FT1-2.1, else FT1-23.1 (filler order number); procedure FT1-25.1, else PR1-3.1;
- occurred_at: FT1-4.1, else FT1-5, else MSH-7; lot/serial from the barcode, else PRT-19/PRT-20;
- patient: only as `patient_token` (HMAC of PID-3).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from adapters.his.barcode import parse_barcode
from adapters.his.context import MessageContext, UnitProblem, group_after
from schemas.ids import item_id_for
from schemas.inventory import ConsumedPayload, InventoryConsumed

if TYPE_CHECKING:
    from adapters.his.tokenize import Segment
    from schemas._base import LocationRef


def translate_charges(mc: MessageContext) -> None:
    rules = mc.mapping.charges
    for occurrence, ft1 in enumerate(mc.message.segments("FT1"), 1):
        position = mc.position(ft1, occurrence)
        mc.units += 1
        kind = ft1.field(6, 1).strip().upper()
        if kind not in rules.transaction_types:
            charges = ", ".join(rules.transaction_types)
            reason = f"{position}: transaction type {kind or '(empty)'} is not a charge ({charges})"
            mc.skip(reason, ft1, *group_after(mc.message, ft1, "FT1"))
            continue
        group = group_after(mc.message, ft1, "FT1")
        item_code = ft1.field(7, 1).strip()
        udi, prt = _udi(mc, ft1, group)
        consumable = {
            "all": True,
            "with_udi": bool(udi),
            "listed": rules.is_listed(item_code),
            "with_udi_or_listed": bool(udi) or rules.is_listed(item_code),
        }[rules.consumables]
        if not consumable:
            what = item_code or "(no code)"
            reason = f"{position}: charge {what} is not a tracked consumable (no UDI, code not listed)"
            mc.skip(reason, ft1, *group)
            continue
        try:
            _consumed(mc, ft1, group, position=position, item_code=item_code, udi=udi, prt=prt)
        except UnitProblem as problem:
            mc.fail(position, problem)


def _consumed(
    mc: MessageContext,
    ft1: Segment,
    group: list[Segment],
    *,
    position: str,
    item_code: str,
    udi: str,
    prt: Segment | None,
) -> None:
    if not item_code:
        raise UnitProblem(
            ft1, "FT1-7", "missing_field", "FT1-7 (transaction code) is empty: the item is unknown"
        )
    quantity = mc.quantity(ft1, 10) or mc.mapping.charges.default_quantity
    if quantity is None:
        raise UnitProblem(ft1, "FT1-10", "missing_field", "FT1-10 (transaction quantity) is empty")
    location = _location(mc, ft1)
    occurred = mc.first_time((ft1, 4, 1), (ft1, 5, 1))
    barcode = parse_barcode(udi) if udi else None
    lot = (barcode.lot if barcode else None) or (prt.field(19).strip() if prt else "") or None
    serial = (barcode.serial if barcode else None) or (prt.field(20).strip() if prt else "") or None
    procedure = ft1.field(25, 1).strip() or next((s.field(3, 1).strip() for s in group if s.id == "PR1"), "")
    charge_id = ft1.field(2, 1).strip() or ft1.field(23, 1).strip()
    patient = mc.patient()
    # FT1-7.2 (the code's text), else FT1-8 (transaction description): the name of what was used.
    item_name = ft1.field(7, 2).strip() or ft1.field(8).strip()
    mc.emit(
        position,
        ft1,
        lambda: InventoryConsumed(
            event_id=mc.event_id(position),
            occurred_at=occurred,
            recorded_at=mc.raw.received_at,
            source=mc.source,
            subject=item_id_for("his", item_code),
            payload=ConsumedPayload(
                location=location,
                quantity=quantity,
                lot=lot,
                serial=serial,
                udi=udi or None,
                barcode=barcode,
                patient_token=patient,
                procedure_code=procedure or None,
                charge_id=charge_id or None,
                item_code=item_code,
                item_name=item_name or None,
            ),
        ),
    )


def _udi(mc: MessageContext, ft1: Segment, group: list[Segment]) -> tuple[str, Segment | None]:
    for segment in group:
        if segment.id == "PRT":
            udi = segment.field(10, 1).strip() or segment.field(16, 1).strip()
            if udi:
                return udi, segment
    field_ref = mc.mapping.charges.udi_field
    if field_ref:
        value, _ = mc.resolve(field_ref, ft1, group)
        return value, None
    return "", None


def _location(mc: MessageContext, ft1: Segment) -> LocationRef:
    code, name = ft1.field(13, 1).strip(), ft1.field(13, 2).strip()
    if code or name:
        return mc.place(ft1, "FT1-13", code, name)
    point = ft1.field(16, 1, 0, 1).strip()
    if point:
        return mc.place(ft1, "FT1-16", point)
    pv1 = mc.message.segment("PV1")
    point = pv1.field(3, 1, 0, 1).strip() if pv1 else ""
    if pv1 is not None and point:
        return mc.place(pv1, "PV1-3", point)
    raise UnitProblem(ft1, "FT1-13", "missing_field", "no department: FT1-13, FT1-16 and PV1-3 are all empty")
