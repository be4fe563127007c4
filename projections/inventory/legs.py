"""Stock events as ledger legs: which item, place and lot each one moves, by how much.

A receipt, consumption or disposal is one leg; a transfer is two (out of the source, into the
target); a stocktake line is one `counted` leg carrying the counted quantity. This module is
pure: it decides the lot, the serials and the stock place of each leg, and nothing else.

- Lot: the payload's, else the barcode's (or, for a consumption, the UDI's), else the lot of a
  named serial learned earlier (SPD and HIS scans do not always repeat the lot of a known unit).
- Serials: the payload's; a single-unit scan's serial (barcode, else the UDI text) when the
  payload names none.
- Consumption corrected (`inventory.consumption_corrected`): the legs the corrected consumption
  had applied (kind `undone`, sign flipped, so its stock comes back), then the corrected
  consumption's own legs; the fold books those under the original's event id, as if the
  consumption had read right from the start (projections.inventory.fold).
- Consumption place: scans name the point of use (theatre 手术间, bed 床位) in the location text,
  which is not a place stock is kept. With `consumption_at_department` (the default) the leg
  books against the department's stock (`<dept>|`) and keeps the text as `point_of_use`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from projections.inventory.codes import NOTHING, ParsedCode, parse_code
from projections.inventory.tables import location_key
from schemas._base import DeptRef, LocationRef
from schemas.inventory import (
    InventoryAdjusted,
    InventoryConsumed,
    InventoryConsumptionCorrected,
    InventoryDisposed,
    InventoryReceived,
    InventoryTransferred,
)

if TYPE_CHECKING:
    from datetime import date
    from decimal import Decimal

    from schemas.envelope import EventBase
    from schemas.inventory import Barcode

DETAIL_COLUMNS = (
    "supplier",
    "po_number",
    "document_no",
    "patient_token",
    "procedure_code",
    "charge_id",
    "reason",
)
STOCK_EVENTS = (
    InventoryReceived,
    InventoryTransferred,
    InventoryConsumed,
    InventoryConsumptionCorrected,
    InventoryAdjusted,
    InventoryDisposed,
)


@dataclass(frozen=True, slots=True)
class Leg:
    """One movement of one item at one place and lot. `quantity` is signed; for `counted`, the count."""

    kind: str  # received | transferred_out | transferred_in | consumed | disposed | counted
    number: int
    place: LocationRef
    lot: str | None
    quantity: Decimal
    serials: tuple[str, ...] = ()
    expiry: date | None = None
    counterpart: LocationRef | None = None  # the other place of a transfer
    point_of_use: str | None = None
    book_quantity: Decimal | None = None
    codes: tuple[str, ...] = ()  # barcode / UDI texts this leg was scanned with
    location_key: str = field(init=False)  # computed once: the fold looks it up several times

    def __post_init__(self) -> None:
        object.__setattr__(self, "location_key", location_key(self.place))

    @property
    def is_count(self) -> bool:
        return self.kind == "counted"

    @property
    def counterpart_key(self) -> str | None:
        return location_key(self.counterpart) if self.counterpart is not None else None


UnitLot = Callable[[str, str], "str | None"]


def details(event: EventBase) -> dict[str, Any]:
    """The ledger's descriptive columns for an event: supplier, PO, document, patient token..."""
    if isinstance(event, InventoryConsumptionCorrected):
        event = as_consumed(event)
    out: dict[str, Any] = dict.fromkeys(DETAIL_COLUMNS)
    if isinstance(event, InventoryReceived):
        out.update(supplier=event.payload.supplier, po_number=event.payload.po_number)
    elif isinstance(event, InventoryTransferred):
        out["document_no"] = event.payload.document_no
    elif isinstance(event, InventoryConsumed):
        p = event.payload
        out.update(patient_token=p.patient_token, procedure_code=p.procedure_code, charge_id=p.charge_id)
    elif isinstance(event, InventoryDisposed):
        note = event.payload.note
        out["reason"] = f"{event.payload.reason}: {note}" if note else event.payload.reason
    elif isinstance(event, InventoryAdjusted):
        out["reason"] = event.payload.reason
    return out


def serials_named(event: EventBase) -> list[str]:
    """Every serial an event names (to load those units before folding)."""
    if isinstance(event, InventoryConsumptionCorrected):
        p = event.payload
        return [
            s for s in (_consumed_scan(as_consumed(event, c))[1] for c in (p.previous, p.consumption)) if s
        ]
    if isinstance(event, InventoryConsumed):
        serial = _consumed_scan(event)[1]
        return [serial] if serial else []
    if isinstance(event, InventoryReceived):
        return list(_serials(event.payload.serials, event.payload.barcode))
    if isinstance(event, InventoryTransferred | InventoryDisposed):
        return list(_serials(event.payload.serials, None))
    return []


def legs_of(event: EventBase, unit_lot: UnitLot, *, consumption_at_department: bool) -> list[Leg]:
    """The ledger legs of a stock event ([] for any other event)."""
    if isinstance(event, InventoryReceived):
        return _received(event, unit_lot)
    if isinstance(event, InventoryTransferred):
        return _transferred(event, unit_lot)
    if isinstance(event, InventoryConsumed):
        return _consumed(event, unit_lot, at_department=consumption_at_department)
    if isinstance(event, InventoryDisposed):
        p = event.payload
        serials = _serials(p.serials, None)
        lot = _lot(event.subject, p.lot, serials, unit_lot)
        return [Leg("disposed", 0, p.location, lot, -p.quantity, serials)]
    if isinstance(event, InventoryAdjusted):
        a = event.payload
        return [Leg("counted", 0, a.location, a.lot, a.counted_quantity, book_quantity=a.book_quantity)]
    return []


def as_consumed(event: InventoryConsumptionCorrected, payload: Any = None) -> InventoryConsumed:
    """The consumption a correction restates, under the original's event id (`payload`: another
    of its payloads, e.g. `previous`)."""
    base = event.model_dump(exclude={"event_id", "type", "schema_version", "payload"})
    return InventoryConsumed(
        **base, event_id=event.payload.corrects, payload=payload or event.payload.consumption
    )


def corrected_legs(
    event: InventoryConsumptionCorrected,
    applied: list[Leg],
    unit_lot: UnitLot,
    *,
    consumption_at_department: bool,
) -> list[Leg]:
    """The legs of a consumption correction: `applied` (what the corrected consumption booked) undone,
    then the corrected consumption's legs."""
    undo = [replace(leg, kind="undone", quantity=-leg.quantity) for leg in applied if leg.kind == "consumed"]
    return [*undo, *_consumed(as_consumed(event), unit_lot, at_department=consumption_at_department)]


def leg_of_row(row: dict[str, Any]) -> Leg:
    """A stored ledger row (projections.inventory.tables.movements) as the leg it booked."""
    place = LocationRef(
        department=DeptRef(code=row["department_code"], name=row["department_name"]), location=row["location"]
    )
    serials = tuple(s for s in (row["serials"] or "").split(";") if s)
    return Leg(
        row["kind"], row["leg"], place, row["lot"], row["quantity"], serials, point_of_use=row["point_of_use"]
    )


def _received(event: InventoryReceived, unit_lot: UnitLot) -> list[Leg]:
    p = event.payload
    serials = _serials(p.serials, p.barcode)
    lot = _lot(event.subject, p.lot or (p.barcode.lot if p.barcode else None), serials, unit_lot)
    expiry = p.expiry or (p.barcode.expiry if p.barcode else None)
    codes = (p.barcode.raw,) if p.barcode else ()
    return [Leg("received", 0, p.location, lot, p.quantity, serials, expiry=expiry, codes=codes)]


def _transferred(event: InventoryTransferred, unit_lot: UnitLot) -> list[Leg]:
    p = event.payload
    serials = _serials(p.serials, None)
    lot = _lot(event.subject, p.lot, serials, unit_lot)
    return [
        Leg("transferred_out", 0, p.from_location, lot, -p.quantity, serials, counterpart=p.to_location),
        Leg("transferred_in", 1, p.to_location, lot, p.quantity, serials, counterpart=p.from_location),
    ]


def _consumed(event: InventoryConsumed, unit_lot: UnitLot, *, at_department: bool) -> list[Leg]:
    p = event.payload
    scan, serial = _consumed_scan(event)
    serials = (serial,) if serial else ()
    lot = _lot(event.subject, p.lot or scan.lot, serials, unit_lot)
    place, point = p.location, None
    if at_department and p.location.location is not None:
        place, point = LocationRef(department=p.location.department), p.location.location
    codes = tuple(dict.fromkeys(c for c in (p.udi, p.barcode.raw if p.barcode else None) if c))
    leg = Leg(
        "consumed", 0, place, lot, -p.quantity, serials, expiry=scan.expiry, point_of_use=point, codes=codes
    )
    return [leg]


def _serials(serials: list[str], barcode: Barcode | None) -> tuple[str, ...]:
    if serials:
        return tuple(dict.fromkeys(serials))
    return (barcode.serial,) if barcode is not None and barcode.serial else ()


def _consumed_scan(event: InventoryConsumed) -> tuple[ParsedCode, str | None]:
    """What the scan says (barcode fields, else the parsed UDI text), and the unit's serial."""
    p = event.payload
    if p.barcode is not None and p.barcode.gtin is not None:
        scan = ParsedCode(
            gtin=p.barcode.gtin, lot=p.barcode.lot, serial=p.barcode.serial, expiry=p.barcode.expiry
        )
    elif p.udi:
        scan = parse_code(p.udi)
    else:
        scan = NOTHING
    return scan, p.serial or scan.serial


def _lot(item: str, lot: str | None, serials: tuple[str, ...], unit_lot: UnitLot) -> str | None:
    if lot:
        return lot
    for serial in serials:
        known = unit_lot(item, serial)
        if known:
            return known
    return None
