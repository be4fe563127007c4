"""SupplyDelivery: the deliveries of a lot or a serialised unit, from the inventory trace.

Each receipt into a store and each transfer to a department of the traced unit or lot is one
completed SupplyDelivery (id: the event id), with the item, quantity, lot and serial, the date,
the supplier (for a transfer: the department it came from) and the destination Location.
Consumption and disposal are not deliveries and are left out.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from hub.api.fhir.device import instant, system_of
from hub.api.fhir.places import Place
from hub.api.fhir.stock import LOT_EXTENSION

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping

DELIVERED = ("received", "transferred")
_ITEM_TYPE = "http://terminology.hl7.org/CodeSystem/supplydelivery-supplyitemtype"


def deliveries(found: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
    """The SupplyDelivery resources of a trace (projections.inventory.trace), oldest first."""
    seen: set[str] = set()
    steps = [(unit, step, unit.get("serial")) for unit in found.get("units", []) for step in unit["steps"]]
    steps += [(lot, step, None) for lot in found.get("lots", []) for step in lot["steps"]]
    steps.sort(key=lambda s: (s[1]["occurred_at"], s[1]["event_id"]))
    for path, step, serial in steps:
        if step["kind"] not in DELIVERED or step["event_id"] in seen:
            continue
        seen.add(step["event_id"])
        yield supply_delivery(path, step, serial)


def supply_delivery(path: Mapping[str, Any], step: Mapping[str, Any], serial: str | None) -> dict[str, Any]:
    """One delivery step of a unit's or a lot's path as an R5 SupplyDelivery."""
    item: dict[str, Any] = {
        "quantity": {"value": float(step.get("quantity") or 1)},
        "itemCodeableConcept": {
            "coding": [{"system": system_of("item"), "code": path["item_id"]}],
            "text": path.get("item_name") or path.get("item_code") or path["item_id"],
        },
    }
    lot = step.get("lot") or path.get("lot")
    parts = [{"url": "lotNumber", "valueString": lot}] if lot else []
    if serial:
        parts.append({"url": "serialNumber", "valueString": serial})
    if path.get("expiry") is not None:
        parts.append({"url": "expiry", "valueDate": path["expiry"].isoformat()})
    if parts:
        item["extension"] = [{"url": LOT_EXTENSION, "extension": parts}]
    out: dict[str, Any] = {
        "resourceType": "SupplyDelivery",
        "id": step["event_id"],
        "status": "completed",
        "type": {"coding": [{"system": _ITEM_TYPE, "code": "device"}]},
        "suppliedItem": [item],
        "occurrenceDateTime": instant(step["occurred_at"]),
    }
    if step.get("document_no"):
        out["identifier"] = [{"system": system_of("document"), "value": step["document_no"]}]
    supplier = step.get("supplier") or step.get("from_department_name") or step.get("from_department_code")
    if supplier:
        out["supplier"] = {"display": supplier}
    if step.get("department_code"):
        where = Place(step["department_code"], step.get("department_name"), step.get("location") or None)
        out["destination"] = {"reference": f"Location/{where.id}", "display": step.get("department_name")}
    return out


def r4b(resource: dict[str, Any]) -> dict[str, Any]:
    """R4B has one suppliedItem."""
    out = dict(resource)
    if resource.get("suppliedItem"):
        out["suppliedItem"] = resource["suppliedItem"][0]
    return out
