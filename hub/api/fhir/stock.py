"""InventoryItem (the item master) and InventoryReport (stock on hand per department), R5 only.

An InventoryItem is one item of the inventory read model's master: its hub item id, its source
code, GTIN and UDI-DI as identifiers, name, spec, unit, category, supplier. An InventoryReport is
the current stock of one department (id: its Location id), a `snapshot`: one listing per place,
one line per item and lot with the quantity on hand; the lot and its expiry ride on the
`inventory-lot` extension. Neither resource exists in R4B (hub.api.fhir.wire.Wire.require).
"""

from __future__ import annotations

from collections import defaultdict
from typing import TYPE_CHECKING, Any

from hub.api.fhir.device import EXTENSION, GS1_ISSUER, instant, system_of
from hub.api.fhir.places import Place

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from datetime import datetime

GTIN_SYSTEM = "https://www.gs1.org/gtin"
LOT_EXTENSION = f"{EXTENSION}inventory-lot"
_NAME_TYPE = "http://hl7.org/fhir/inventoryitem-nametype"
LANGUAGE = "zh-CN"


def inventory_item(row: Mapping[str, Any]) -> dict[str, Any]:
    """One item of the master as an R5 InventoryItem."""
    identifiers = [{"system": system_of("item"), "value": row["item_id"]}]
    if row.get("item_code"):
        identifiers.append({"system": system_of("item.code"), "value": row["item_code"]})
    if row.get("gtin"):
        identifiers.append({"system": GTIN_SYSTEM, "value": row["gtin"]})
    if row.get("udi_di"):
        identifiers.append({"system": GS1_ISSUER, "value": row["udi_di"]})
    out: dict[str, Any] = {
        "resourceType": "InventoryItem",
        "id": row["item_id"],
        "identifier": identifiers,
        "status": "active",
    }
    name = row.get("name") or row.get("item_code")
    if name:
        out["name"] = [
            {
                "nameType": {"system": _NAME_TYPE, "code": "registered-name"},
                "language": LANGUAGE,
                "name": name,
            }
        ]
    if row.get("item_code"):
        out["code"] = [
            {"coding": [{"system": system_of("item.code"), "code": row["item_code"]}], "text": name}
        ]
    out.update(_described(row))
    return out


def _described(row: Mapping[str, Any]) -> dict[str, Any]:
    """Category, spec, unit, supplier and the high-value flag of an item, where known."""
    out: dict[str, Any] = {}
    if row.get("category"):
        out["category"] = [{"text": row["category"]}]
    if row.get("spec"):
        out["description"] = {"language": LANGUAGE, "description": row["spec"]}
    if row.get("unit"):
        out["baseUnit"] = {"text": row["unit"]}
    if row.get("supplier"):
        out["responsibleOrganization"] = [
            {"role": {"text": "supplier"}, "organization": {"display": row["supplier"]}}
        ]
    if row.get("high_value") is not None:
        out["characteristic"] = [
            {"characteristicType": {"text": "high-value"}, "valueBoolean": bool(row["high_value"])}
        ]
    return out


def inventory_report(place: Place, rows: Sequence[Mapping[str, Any]], now: datetime) -> dict[str, Any]:
    """The stock rows of one department (list_stock) as an R5 InventoryReport snapshot."""
    by_place: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
    for row in rows:
        by_place[row.get("location") or ""].append(row)
    listings = []
    for where, lines in sorted(by_place.items()):
        spot = Place(place.department_code, place.department_name, where or None)
        listing: dict[str, Any] = {
            "location": {"reference": f"Location/{spot.id}"},
            "item": [_line(row) for row in lines],
        }
        counted = [row["count_at"] for row in lines if row.get("count_at") is not None]
        if counted:
            listing["countingDateTime"] = instant(max(counted))
        listings.append(listing)
    out: dict[str, Any] = {
        "resourceType": "InventoryReport",
        "id": place.id,
        "status": "active",
        "countType": "snapshot",
        "reportedDateTime": instant(now),
        "note": [{"text": f"{place.department_name or place.department_code}: stock on hand"}],
    }
    if listings:
        out["inventoryListing"] = listings
    return out


def _line(row: Mapping[str, Any]) -> dict[str, Any]:
    quantity: dict[str, Any] = {"value": float(row["on_hand"])}
    if row.get("unit"):
        quantity["unit"] = row["unit"]
    line: dict[str, Any] = {
        "quantity": quantity,
        "item": {
            "reference": {
                "reference": f"InventoryItem/{row['item_id']}",
                "display": row.get("item_name") or row.get("item_code") or row["item_id"],
            }
        },
    }
    lot: list[dict[str, Any]] = []
    if row.get("lot"):
        lot.append({"url": "lotNumber", "valueString": row["lot"]})
    if row.get("expiry") is not None:
        lot.append({"url": "expiry", "valueDate": row["expiry"].isoformat()})
    if lot:
        line["extension"] = [{"url": LOT_EXTENSION, "extension": lot}]
    return line
