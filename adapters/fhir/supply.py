"""SupplyDelivery -> `inventory.received` / `.transferred`; InventoryItem -> `inventory.item_defined`.

A delivery moves stock only in a status the mapping lists (completed, by default); others are
archived and skipped. Each supplied item is one event: a receipt into the destination's stock,
or, when the mapping says the destination is a department, a transfer from the default store.
R5 `suppliedItem` is a list, R4B's a single element; paths say which (`suppliedItem[1]`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from adapters.fhir.items import Item, resolve_item
from adapters.fhir.units import Result, Skip, Unit
from adapters.fhir.values import as_list, concept_text, identifier_values, quantity, reference_label, text
from schemas.inventory import (
    InventoryItemDefined,
    InventoryReceived,
    InventoryTransferred,
    ItemDefinedPayload,
    ReceivedPayload,
    TransferredPayload,
)

if TYPE_CHECKING:
    from decimal import Decimal

    from schemas._base import LocationRef
    from schemas.envelope import EventBase


def translate_delivery(unit: Unit) -> Result:
    delivery = unit.resource
    status = text(delivery.status)
    if status not in unit.mapping.delivery_statuses:
        counted = ", ".join(unit.mapping.delivery_statuses)
        return Skip(f"SupplyDelivery status {status or '(none)'}: stock moves only on {counted}")
    listed = isinstance(delivery.suppliedItem, list)
    supplied = as_list(delivery.suppliedItem)
    if not supplied:
        unit.refuse("required", "SupplyDelivery.suppliedItem", "a delivery needs the items supplied")
    place = unit.place(delivery.destination, "SupplyDelivery.destination")
    period = delivery.occurrencePeriod
    occurred = unit.occurred(
        delivery.occurrenceDateTime, period.end if period else None, period.start if period else None
    )
    document_no = next((value for _, value, _ in identifier_values(delivery.identifier)), None)
    events: list[EventBase] = []
    for k, entry in enumerate(supplied):
        path = f"SupplyDelivery.suppliedItem[{k}]" if listed else "SupplyDelivery.suppliedItem"
        amount = _positive(unit, entry.quantity, f"{path}.quantity.value")
        item = resolve_item(unit, [entry.itemCodeableConcept], entry.itemReference, f"{path}.item")
        if amount is None or item is None:
            continue
        if place is not None and place.kind == "department":
            event: EventBase = InventoryTransferred(
                event_id=unit.event_id(k),
                occurred_at=occurred,
                recorded_at=unit.raw.received_at,
                source=unit.source,
                subject=item.item_id,
                payload=TransferredPayload(
                    from_location=unit.mapping.store(),
                    to_location=place.stock,
                    quantity=amount,
                    lot=item.lot,
                    serials=item.serials,
                    document_no=document_no,
                ),
            )
        else:
            event = InventoryReceived(
                event_id=unit.event_id(k),
                occurred_at=occurred,
                recorded_at=unit.raw.received_at,
                source=unit.source,
                subject=item.item_id,
                payload=_received(delivery, item, amount, place.stock if place else unit.mapping.store()),
            )
        events.append(event)
    return unit.result(events)


def _received(delivery: Any, item: Item, amount: Decimal, location: LocationRef) -> ReceivedPayload:
    based_on = as_list(delivery.basedOn)
    return ReceivedPayload(
        location=location,
        quantity=amount,
        lot=item.lot,
        expiry=item.expiry,
        serials=item.serials,
        supplier=reference_label(delivery.supplier),
        po_number=reference_label(based_on[0]) if based_on else None,
        barcode=item.barcode,
    )


def _positive(unit: Unit, value: Any, path: str) -> Decimal | None:
    amount = quantity(value)
    if amount is None:
        unit.refuse("required", path, "a delivered quantity is needed")
        return None
    if amount <= 0:
        unit.refuse("value", path, "a delivered quantity must be greater than 0")
        return None
    return amount


def translate_inventory_item(unit: Unit) -> Result:
    resource = unit.resource
    if not unit.mapping.inventory_items.define:
        return Skip("InventoryItem archived; the mapping does not let FHIR define items")
    if resource.status == "entered-in-error":
        return Skip("InventoryItem entered in error")
    item = resolve_item(unit, as_list(resource.code), None, "InventoryItem.code")
    if item is not None and item.namespace == "spd":
        return Skip(f"InventoryItem for SPD item {item.code} archived; the SPD item master defines SPD items")
    name = item.name if item else None
    name = next((text(n.name) for n in as_list(resource.name) if text(n.name)), None) or name
    description = resource.description
    name = name or (text(description.description) if description is not None else None)
    if not name:
        unit.refuse("required", "InventoryItem.name", "an item definition needs a name")
    if item is None or not name:
        return unit.result([])
    supplier = next(
        (reference_label(o.organization) for o in as_list(resource.responsibleOrganization)), None
    )
    category = next((concept_text(c) for c in as_list(resource.category) if concept_text(c)), None)
    event = InventoryItemDefined(
        event_id=unit.event_id(0),
        occurred_at=unit.occurred(),
        recorded_at=unit.raw.received_at,
        source=unit.source,
        subject=item.item_id,
        payload=ItemDefinedPayload(
            item_code=item.code,
            name=name,
            unit=concept_text(resource.baseUnit),
            gtin=item.gtin,
            category=category,
            supplier=supplier,
        ),
    )
    return unit.result([event])
