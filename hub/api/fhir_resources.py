"""Read models as FHIR R5 resources: Device from the asset registry, Bundles, OperationOutcome.

Pure functions of rows; hub.api.routes.fhir_read serves them. Every resource is validated with
fhir.resources before it leaves (a mapping bug is a 500 in tests, never invalid FHIR on the wire).

Identifiers: every identifier the registry links to the device is listed, each with the system
URI of its hub scheme (`urn:hospital-hub:id:hrp.card`, ...); a UDI is also a `udiCarrier` (GS1
issuer), a serial number `serialNumber`. Status: `inactive` for scrapped or sealed devices, else
`active`; what the device can do now is `availabilityStatus` (available / damaged while under
repair / lost when unknown), as R5 separates the record's status from the device's.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fhir.resources.bundle import Bundle
from fhir.resources.capabilitystatement import CapabilityStatement
from fhir.resources.device import Device
from fhir.resources.operationoutcome import OperationOutcome

from projections.assets.queries import INACTIVE_STATUSES

if TYPE_CHECKING:
    from collections.abc import Sequence
    from datetime import datetime

FHIR_JSON = "application/fhir+json"
FHIR_VERSION = "5.0.0"
SCHEME_SYSTEM = "urn:hospital-hub:id:"
GS1_ISSUER = "http://hl7.org/fhir/NamingSystem/gs1-di"
AVAILABILITY_SYSTEM = "http://terminology.hl7.org/CodeSystem/device-availability-status"
_INACTIVE = frozenset(INACTIVE_STATUSES)
_AVAILABILITY = {"under_repair": "damaged", "unknown": "lost"}
SEARCH_PARAMS = (
    ("identifier", "token", "system|value of any identifier the hub links to the device"),
    ("status", "token", "active | inactive"),
    ("location", "reference", "Location/<department code>, or the department code or name"),
    ("type", "token", "category code (e.g. 6854) or name"),
    ("_count", "number", "page size (at most 500)"),
    ("_offset", "number", "resources to skip (the Bundle's next/previous links carry it)"),
)


def system_of(scheme: str) -> str:
    return f"{SCHEME_SYSTEM}{scheme}"


def scheme_of(system: str) -> str | None:
    """The hub scheme a system URI names (ours), else None (another's: searched by value only)."""
    return system[len(SCHEME_SYSTEM) :] if system.startswith(SCHEME_SYSTEM) else None


def device(row: dict[str, Any]) -> dict[str, Any]:
    """One golden record of the asset registry as an R5 Device (validated)."""
    status = str(row.get("status") or "unknown")
    out: dict[str, Any] = {
        "resourceType": "Device",
        "id": row["asset_id"],
        "status": "inactive" if status in _INACTIVE or row.get("decommissioned") else "active",
        "availabilityStatus": {
            "coding": [{"system": AVAILABILITY_SYSTEM, "code": _AVAILABILITY.get(status, "available")}],
            "text": row.get("status_text") or status,
        },
        "identifier": [
            {"system": system_of(link["scheme"]), "value": link["value"]}
            for link in row.get("identifiers", [])
        ],
    }
    if row.get("last_occurred_at") is not None:
        out["meta"] = {"lastUpdated": _instant(row["last_occurred_at"])}
    if row.get("name"):
        out["displayName"] = row["name"]
    for source, target in (
        ("manufacturer", "manufacturer"),
        ("serial_number", "serialNumber"),
        ("model", "modelNumber"),
    ):
        if row.get(source):
            out[target] = row[source]
    if row.get("udi"):
        out["udiCarrier"] = [
            {"deviceIdentifier": _udi_di(row["udi"]), "issuer": GS1_ISSUER, "carrierHRF": row["udi"]}
        ]
    if row.get("category_code") or row.get("category_name"):
        coding = (
            [{"system": system_of("category"), "code": row["category_code"]}]
            if row.get("category_code")
            else []
        )
        out["type"] = [{"coding": coding, "text": row.get("category_name") or row["category_code"]}]
    if row.get("department_code") or row.get("department_name"):
        where = {"display": row.get("department_name") or row["department_code"]}
        if row.get("department_code"):
            where["reference"] = f"Location/{row['department_code']}"
        out["location"] = where
    if row.get("location"):
        out["note"] = [{"text": f"位置: {row['location']}"}]
    return Device.model_validate(out).model_dump(mode="json", exclude_none=True)


def _udi_di(udi: str) -> str:
    """The device identifier of a GS1 UDI: the GTIN after (01), or the text as it is."""
    text = udi.replace("(", "").replace(")", "")
    return text[2:16] if text.startswith("01") and len(text) >= 16 and text[2:16].isdigit() else udi


def _instant(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def searchset(
    resources: Sequence[dict[str, Any]], *, total: int, self_url: str, page_url: str, count: int, offset: int
) -> dict[str, Any]:
    """A searchset Bundle with self/next/previous links (`page_url` ends in `_offset=`)."""
    links = [{"relation": "self", "url": self_url}]
    if offset + count < total:
        links.append({"relation": "next", "url": f"{page_url}{offset + count}"})
    if offset > 0:
        links.append({"relation": "previous", "url": f"{page_url}{max(0, offset - count)}"})
    bundle = {
        "resourceType": "Bundle",
        "type": "searchset",
        "total": total,
        "link": links,
        "entry": [
            {"fullUrl": f"{r['resourceType']}/{r['id']}", "resource": r, "search": {"mode": "match"}}
            for r in resources
        ],
    }
    return Bundle.model_validate(bundle).model_dump(mode="json", exclude_none=True)


def outcome(code: str, diagnostics: str, *, expression: str | None = None) -> dict[str, Any]:
    """An OperationOutcome with one error issue (`expression` names the element or parameter)."""
    issue: dict[str, Any] = {"severity": "error", "code": code, "diagnostics": diagnostics}
    if expression:
        issue["expression"] = [expression]
    return OperationOutcome.model_validate({"resourceType": "OperationOutcome", "issue": [issue]}).model_dump(
        mode="json", exclude_none=True
    )


def capability_statement(*, software: str, version: str, now: datetime) -> dict[str, Any]:
    """What this server supports: exactly the reads served, and the writes /fhir accepts."""
    writes = (
        "Device",
        "Location",
        "SupplyDelivery",
        "SupplyRequest",
        "Task",
        "InventoryReport",
        "InventoryItem",
    )
    resources: list[dict[str, Any]] = [
        {
            "type": "Device",
            "interaction": [{"code": "read"}, {"code": "search-type"}, {"code": "create"}],
            "searchParam": [
                {"name": name, "type": kind, "documentation": doc}
                for name, kind, doc in SEARCH_PARAMS
                if not name.startswith("_")
            ],
        },
        *({"type": t, "interaction": [{"code": "create"}]} for t in writes if t != "Device"),
    ]
    statement = {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": _instant(now),
        "kind": "instance",
        "software": {"name": software, "version": version},
        "implementation": {"description": "Hospital integration hub: FHIR facade over its read models"},
        "fhirVersion": FHIR_VERSION,
        "format": ["json"],
        "rest": [
            {
                "mode": "server",
                "security": {
                    "description": "API key: Authorization: Bearer hub_<key id>_<secret>, or X-API-Key"
                },
                "resource": resources,
                "interaction": [{"code": "batch"}, {"code": "transaction"}],
            }
        ],
    }
    return CapabilityStatement.model_validate(statement).model_dump(mode="json", exclude_none=True)
