"""R5 InventoryReport (a stocktake) -> one `inventory.adjusted` per counted item and location.

Only `countType: snapshot` says how much stock there is; a `difference` report says how much it
changed, which `inventory.adjusted` (counted quantity) cannot carry: it is refused, naming
countType, rather than guessed. Reports in a status the mapping does not list (draft, by
default) are archived and skipped: their counts are not final.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from adapters.fhir.items import resolve_item
from adapters.fhir.units import Result, Skip, Unit
from adapters.fhir.values import as_list, concept_text, quantity, text
from schemas._base import LocationRef
from schemas.inventory import AdjustedPayload, InventoryAdjusted

if TYPE_CHECKING:
    from schemas.envelope import EventBase


def translate_report(unit: Unit) -> Result:
    report = unit.resource
    status = text(report.status)
    if status not in unit.mapping.report_statuses:
        final = ", ".join(unit.mapping.report_statuses)
        return Skip(f"InventoryReport status {status or '(none)'}: counts are taken only when {final}")
    if report.countType != "snapshot":
        unit.refuse(
            "not-supported",
            "InventoryReport.countType",
            f"countType {report.countType!r} is not supported: inventory.adjusted needs counted quantities "
            "(snapshot), not differences",
        )
        return unit.result([])
    listings = as_list(report.inventoryListing)
    if not listings:
        return Skip("InventoryReport has no inventoryListing: nothing was counted")
    reason = concept_text(report.operationTypeReason) or concept_text(report.operationType)
    events: list[EventBase] = []
    for n, listing in enumerate(listings):
        path = f"InventoryReport.inventoryListing[{n}]"
        place = unit.place(listing.location, f"{path}.location")
        location = place.stock if place is not None else LocationRef()
        occurred = unit.occurred(listing.countingDateTime, report.reportedDateTime)
        status_word = concept_text(listing.itemStatus)
        for k, line in enumerate(as_list(listing.item)):
            at = f"{path}.item[{k}]"
            counted = quantity(line.quantity)
            if counted is None or counted < 0:
                unit.refuse("value", f"{at}.quantity.value", "a counted quantity of 0 or more is needed")
                continue
            named = line.item
            item = resolve_item(
                unit,
                [named.concept] if named is not None else [],
                named.reference if named else None,
                f"{at}.item",
            )
            if item is None:
                continue
            events.append(
                InventoryAdjusted(
                    event_id=unit.event_id(f"{n}.{k}"),
                    occurred_at=occurred,
                    recorded_at=unit.raw.received_at,
                    source=unit.source,
                    subject=item.item_id,
                    payload=AdjustedPayload(
                        location=location,
                        lot=item.lot,
                        counted_quantity=counted,
                        reason=status_word or reason,
                    ),
                )
            )
    return unit.result(events)
