"""Which hub item a FHIR item names, and the lot, expiry, serials and barcode it carries.

The item code, best first: a coding from a system the mapping ties to the SPD item master (the
hub item is then `item_id_for("spd", code)`, the same item the SPD adapter keys); a GTIN
(a GTIN coding, or the GTIN inside a UDI/barcode coding) as `gtin|<GTIN>`; any other coding as
`system|code` (or the bare code without a system); a non-contained reference as itself. Lot,
expiry and serial come from a referenced contained InventoryItem (R5 `instance`) or Device
(lotNumber, expirationDate, serialNumber, UDI), or from a UDI/barcode coding.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from adapters.fhir.devices import udi_readings
from adapters.fhir.udi import UdiReading, read_udi
from adapters.fhir.values import Coding, as_list, calendar_date, codings, contained, text
from schemas.ids import item_id_for

if TYPE_CHECKING:
    from datetime import date

    from adapters.fhir.mapping import ItemNamespace
    from adapters.fhir.units import Unit
    from schemas.inventory import Barcode


@dataclass(frozen=True, slots=True)
class Item:
    """A hub item and what the FHIR element said about the units delivered or counted."""

    namespace: ItemNamespace
    code: str
    lot: str | None = None
    expiry: date | None = None
    serials: list[str] = field(default_factory=list)
    barcode: Barcode | None = None
    gtin: str | None = None
    name: str | None = None

    @property
    def item_id(self) -> str:
        return item_id_for(self.namespace, self.code)


def resolve_item(unit: Unit, concepts: list[Any], reference: Any, path: str) -> Item | None:
    """The item named by `concepts` and/or `reference`; None (and a problem on `unit`) when nothing does."""
    target = contained(unit.resource, reference)
    found = [c for concept in concepts for c in codings(concept)]
    lot: str | None = None
    expiry: date | None = None
    serials: list[str] = []
    readings: list[UdiReading] = []
    name: str | None = None
    if target is not None:
        kind = target.get_resource_type()
        if kind == "InventoryItem":
            found += [c for concept in as_list(target.code) for c in codings(concept)]
            instance = target.instance
            if instance is not None:
                lot, expiry = text(instance.lotNumber), calendar_date(instance.expiry)
            name = next((text(n.name) for n in as_list(target.name) if text(n.name)), None)
        elif kind == "Device":
            found += [c for concept in as_list(target.type) for c in codings(concept)]
            lot, expiry = text(target.lotNumber), calendar_date(target.expirationDate)
            serial = text(target.serialNumber)
            serials = [serial] if serial else []
            readings = udi_readings(target)
    readings += [read_udi(c.code) for c in found if c.code and c.system in unit.mapping.barcode_systems]
    reading = next((r for r in readings if r.parse_error is None), readings[0] if readings else None)
    if reading is not None:
        lot = lot or reading.lot
        expiry = expiry or reading.expiry
        if reading.serial and reading.serial not in serials:
            serials.append(reading.serial)
    gtin = _gtin(found, unit) or (reading.gtin if reading else None)
    key = _key(found, gtin, reference, unit)
    if key is None:
        unit.refuse(
            "required", path, "names no item: it needs a coding, a GTIN/UDI or a reference to the item"
        )
        return None
    namespace, code = key
    return Item(
        namespace=namespace,
        code=code,
        lot=lot,
        expiry=expiry,
        serials=serials,
        barcode=reading.barcode(strict=False) if reading else None,
        gtin=gtin,
        name=name or next((c.display for c in found if c.display), None),
    )


def _gtin(found: list[Coding], unit: Unit) -> str | None:
    wanted = unit.mapping.gtin_systems
    return next((c.code for c in found if c.code and c.system in wanted), None)


def _key(
    found: list[Coding], gtin: str | None, reference: Any, unit: Unit
) -> tuple[ItemNamespace, str] | None:
    systems = unit.mapping.item_code_systems
    for coding in found:
        if coding.code and coding.system in systems:
            return systems[coding.system], coding.code
    if gtin:
        return "fhir", f"gtin|{gtin}"
    skip = set(unit.mapping.barcode_systems)
    for coding in found:
        if coding.code and coding.system not in skip:
            return "fhir", f"{coding.system}|{coding.code}" if coding.system else coding.code
    literal = text(getattr(reference, "reference", None)) if reference is not None else None
    if literal and not literal.startswith("#"):
        return "fhir", literal
    return None
