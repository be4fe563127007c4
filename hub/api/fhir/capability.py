"""The CapabilityStatement: exactly the interactions and search parameters the facade serves.

`SERVED` is the one table of what the read routes (hub.api.routes.fhir_*) answer; `CREATED` the
types POST /fhir/{type} ingests (hub.api.routes.ingest). The statement of a release lists only
the types that release has (no InventoryItem / InventoryReport in R4B).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from adapters.fhir.versions import SUPPORTED
from hub.api.fhir.device import instant
from hub.api.fhir.task import task_id
from hub.api.fhir.wire import FHIR_VERSIONS

if TYPE_CHECKING:
    from collections.abc import Sequence
    from datetime import datetime

    from adapters.fhir.versions import FhirVersion

Param = tuple[str, str, str]
_LAST_UPDATED: Param = ("_lastUpdated", "date", "[eq|ge|gt|le|lt]date or dateTime; repeat to bound both ends")
SERVED: dict[str, tuple[tuple[str, ...], tuple[Param, ...]]] = {
    "Device": (
        ("read", "search-type"),
        (
            (
                "identifier",
                "token",
                "system|value of any identifier (hub, site FHIR or GS1/UDI system), or value",
            ),
            ("udi-di", "token", "the UDI device identifier (GTIN)"),
            ("status", "token", "active | inactive"),
            (
                "location",
                "reference",
                "Location/<id> (a department or a place), or a department code or name",
            ),
            ("type", "token", "category code (e.g. 6854), or system|code, or name"),
            _LAST_UPDATED,
        ),
    ),
    "Location": (
        ("read", "search-type"),
        (
            ("name", "string", "part of the department's or place's name"),
            ("partof", "reference", "Location/<department id>: the places inside it"),
        ),
    ),
    "InventoryItem": (
        ("read", "search-type"),
        (
            ("code", "token", "the item code, or system|code"),
            ("identifier", "token", "hub item id, item code, GTIN or UDI-DI (value or system|value)"),
            ("name", "string", "part of the name or code"),
        ),
    ),
    "InventoryReport": (
        ("read", "search-type"),
        (("location", "reference", "Location/<department id>: that department's stock"),),
    ),
    "SupplyDelivery": (
        ("read", "search-type"),
        (
            ("lot", "token", "the lot number (with item= to narrow to one item)"),
            ("item", "token", "hub item id or item code, with lot="),
            ("serial", "token", "a serial number, UDI or GS1 string of one unit"),
        ),
    ),
    "Task": (
        ("read", "search-type"),
        (
            (
                "status",
                "token",
                "requested | accepted | in-progress | on-hold | completed | cancelled | rejected",
            ),
            ("focus", "reference", "Device/<id>: the work orders of a device"),
            ("business-status", "token", "the hub's work-order state (requested, approved, assigned, ...)"),
        ),
    ),
    "AuditEvent": (
        ("read", "search-type"),
        (
            ("date", "date", "when recorded: [eq|ge|gt|le|lt]date or dateTime (auditor role)"),
            ("agent", "token", "the API key id that read"),
        ),
    ),
}
# What a created resource is read back as: the first event of this type names it (by its subject,
# or for a delivery by the event itself).
_READ_AS = {
    "Device": ("asset.", "Device/{subject}"),
    "Task": ("workorder.", "Task/{task}"),
    "InventoryItem": ("inventory.", "InventoryItem/{subject}"),
    "SupplyDelivery": ("inventory.", "SupplyDelivery/{event}"),
}
CREATED = (
    "Device",
    "Location",
    "SupplyDelivery",
    "SupplyRequest",
    "Task",
    "InventoryReport",
    "InventoryItem",
)


def capability_statement(
    *, software: str, version: str, now: datetime, release: FhirVersion
) -> dict[str, Any]:
    """What this server supports in `release`: the reads served and the writes POST /fhir accepts."""
    known = SUPPORTED[release] | {"AuditEvent"}
    resources = []
    for name in sorted({*SERVED, *CREATED} & known):
        interactions, params = SERVED.get(name, ((), ()))
        codes = [*interactions, *(("create",) if name in CREATED else ())]
        entry: dict[str, Any] = {"type": name, "interaction": [{"code": c} for c in codes]}
        if params:
            entry["searchParam"] = [{"name": n, "type": t, "documentation": d} for n, t, d in params]
        if "read" in interactions:
            entry["versioning"] = "versioned"
            entry["readHistory"] = False
            entry["conditionalRead"] = "not-match"
        resources.append(entry)
    return {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": instant(now),
        "kind": "instance",
        "software": {"name": software, "version": version},
        "implementation": {
            "description": "Hospital integration hub: FHIR facade over its read models. Searches page with "
            "_count (1-500) and _offset; _format=json|xml or Accept picks the format, fhirVersion=4.3 R4B."
        },
        "fhirVersion": FHIR_VERSIONS[release],
        "format": ["json", "xml"],
        "rest": [
            {
                "mode": "server",
                "security": {
                    "description": "API key: Authorization: Bearer hub_<key id>_<secret>, or X-API-Key. "
                    "Department-scoped keys see their department only; AuditEvent needs the auditor role."
                },
                "resource": resources,
                "interaction": [{"code": "batch"}, {"code": "transaction"}],
            }
        ],
    }


def created_at(resource_type: str, subjects: Sequence[tuple[str, str, str]]) -> str | None:
    """`Device/<asset id>` (Task/..., InventoryItem/..., SupplyDelivery/...) for what a POST created."""
    if resource_type not in _READ_AS:
        return None
    prefix, template = _READ_AS[resource_type]
    wanted = (
        ("inventory.received", "inventory.transferred") if resource_type == "SupplyDelivery" else (prefix,)
    )
    found = next(((s, e) for t, s, e in subjects if t.startswith(wanted)), None)
    if found is None:
        return None
    subject, event = found
    return template.format(subject=subject, task=task_id(subject), event=event)
