"""Device from the asset registry: every identifier, udiCarrier, owner and location, status,
availability, last calibration (R5; `r4b` gives the R4B form).

Identifiers: each identifier the registry links to the device, with the system URI of its hub
scheme (`urn:hospital-hub:id:hrp.card`, `...:spd.code`, `...:udi`, `...:serial` whose value is
`<manufacturer>|<serial>`, ...); an identifier the hub kept qualified by a namespace it did not
know (scheme `ns`, `<system>|<value>`) goes back under its own system. A UDI is also a
`udiCarrier` (GS1 issuer), the serial number `serialNumber`.

Status: `inactive` for scrapped, sealed or decommissioned devices, else `active`. R5's
`availabilityStatus` says what the device can do now (available / damaged while under repair /
lost when unknown); the `device-availability` extension (in both releases) carries the
emergency-availability class (ready, on_loan, under_repair, calibration_due, unavailable), its
emergency-pool flag and the day readiness runs out; `device-last-calibration` the last
calibration (date, result, valid until, provider, certificate).

Search (`identifier=system|value`): a hub system narrows to that scheme; a system the site's FHIR
mapping lists (`namespaces:`) to the scheme it maps to; a GS1 / UDI issuer to `udi`; any other
system to the identifier kept qualified by it (`ns`); no system (`|value` or `value`) matches the
value in every scheme.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from hub.api.fhir.places import DEPARTMENT_SYSTEM, department_id, place_id
from projections.assets.queries import INACTIVE_STATUSES, QUALIFIED_SCHEME

if TYPE_CHECKING:
    from collections.abc import Mapping
    from datetime import date, datetime

SCHEME_SYSTEM = "urn:hospital-hub:id:"
EXTENSION = "urn:hospital-hub:fhir:StructureDefinition/"
AVAILABILITY_EXTENSION = f"{EXTENSION}device-availability"
CALIBRATION_EXTENSION = f"{EXTENSION}device-last-calibration"
GS1_ISSUER = "http://hl7.org/fhir/NamingSystem/gs1-di"
UDI_SYSTEMS = frozenset(
    {
        GS1_ISSUER,
        "urn:oid:2.51.1.1",  # GS1
        "http://hl7.org/fhir/NamingSystem/fda-udi",
        "urn:oid:2.16.840.1.113883.3.3719",  # FDA UDI
        "http://hl7.org/fhir/NamingSystem/hibcc-dI",
        "urn:oid:1.0.15961.10.816",  # HIBCC
        "http://hl7.org/fhir/NamingSystem/iccbba-blood-di",
        "urn:oid:2.16.840.1.113883.6.18.1.34",  # ICCBBA
    }
)
AVAILABILITY_SYSTEM = "http://terminology.hl7.org/CodeSystem/device-availability-status"
_INACTIVE = frozenset(INACTIVE_STATUSES)
_AVAILABILITY = {"under_repair": "damaged", "unknown": "lost"}
STATUSES = ("active", "inactive")
GTIN_LENGTH = 14


def system_of(scheme: str) -> str:
    return f"{SCHEME_SYSTEM}{scheme}"


def scheme_of(system: str) -> str | None:
    """The hub scheme a system URI names (ours), else None."""
    return system[len(SCHEME_SYSTEM) :] if system.startswith(SCHEME_SYSTEM) else None


def identifier_query(token: str, site_systems: Mapping[str, str]) -> tuple[str | None, str | None]:
    """An `identifier` search value as (the registry's `scheme:value` or a bare value, a UDI-DI).

    A GS1 / UDI system with a 14-digit value is a device identifier: it finds the UDIs that hold it.
    """
    if "|" not in token:
        return token, None
    system, _, value = token.partition("|")
    if not system:
        return value, None
    scheme = scheme_of(system) or site_systems.get(system)
    if scheme is None and system in UDI_SYSTEMS:
        if value.isdigit() and len(value) == GTIN_LENGTH:
            return None, value
        scheme = "udi"
    if scheme is None:
        return f"{QUALIFIED_SCHEME}:{system}|{value}", None
    return f"{scheme}:{value}", None


def _identifier(link: Mapping[str, str]) -> dict[str, str]:
    if link["scheme"] == QUALIFIED_SCHEME:
        system, sep, value = link["value"].partition("|")
        if sep and ":" in system and not system.startswith("sha256:"):
            return {"system": system, "value": value}
    return {"system": system_of(link["scheme"]), "value": link["value"]}


def device(row: Mapping[str, Any], availability: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """One golden record of the asset registry as an R5 Device (`availability`: its row, if any)."""
    status = str(row.get("status") or "unknown")
    out: dict[str, Any] = {
        "resourceType": "Device",
        "id": row["asset_id"],
        "status": "inactive" if status in _INACTIVE or row.get("decommissioned") else "active",
        "availabilityStatus": {
            "coding": [{"system": AVAILABILITY_SYSTEM, "code": _AVAILABILITY.get(status, "available")}],
            "text": row.get("status_text") or status,
        },
        "identifier": [_identifier(link) for link in row.get("identifiers", [])],
    }
    extensions = [_availability(status, availability), *_calibration(row)]
    out["extension"] = extensions
    if row.get("last_occurred_at") is not None:
        out["meta"] = {"lastUpdated": instant(row["last_occurred_at"])}
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
            {"deviceIdentifier": udi_di(row["udi"]), "issuer": GS1_ISSUER, "carrierHRF": row["udi"]}
        ]
    if row.get("category_code") or row.get("category_name"):
        coding = (
            [{"system": system_of("category"), "code": row["category_code"]}]
            if row.get("category_code")
            else []
        )
        out["type"] = [{"coding": coding, "text": row.get("category_name") or row["category_code"]}]
    out.update(_whereabouts(row))
    return out


def _whereabouts(row: Mapping[str, Any]) -> dict[str, Any]:
    """owner (the department that holds it) and location (the place if known, else the department)."""
    code, name = row.get("department_code"), row.get("department_name")
    if not (code or name):
        return {}
    owner: dict[str, Any] = {"display": name or code}
    if code:
        owner["identifier"] = {"system": DEPARTMENT_SYSTEM, "value": code}
    out: dict[str, Any] = {"owner": owner}
    place = row.get("location")
    if code and place:
        out["location"] = {
            "reference": f"Location/{place_id(code, place)}",
            "display": f"{name or code} {place}",
        }
    elif code:
        out["location"] = {"reference": f"Location/{department_id(code)}", "display": name or code}
    else:
        out["location"] = {"display": name}
    return out


def _availability(status: str, row: Mapping[str, Any] | None) -> dict[str, Any]:
    parts: list[dict[str, Any]] = [{"url": "status", "valueCode": status}]
    if row is not None:
        parts.append({"url": "class", "valueCode": row["availability"]})
        parts.append({"url": "emergencyPool", "valueBoolean": bool(row["pool"])})
        if row.get("ready_until") is not None:
            parts.append({"url": "readyUntil", "valueDate": _day(row["ready_until"])})
    return {"url": AVAILABILITY_EXTENSION, "extension": parts}


def _calibration(row: Mapping[str, Any]) -> list[dict[str, Any]]:
    if row.get("calibrated_on") is None:
        return []
    parts: list[dict[str, Any]] = [{"url": "date", "valueDate": _day(row["calibrated_on"])}]
    if row.get("calibration_result"):
        parts.append({"url": "result", "valueCode": row["calibration_result"]})
    if row.get("calibration_valid_until") is not None:
        parts.append({"url": "validUntil", "valueDate": _day(row["calibration_valid_until"])})
    for column, url in (("calibration_provider", "provider"), ("calibration_certificate", "certificate")):
        if row.get(column):
            parts.append({"url": url, "valueString": row[column]})
    return [{"url": CALIBRATION_EXTENSION, "extension": parts}]


def r4b(resource: dict[str, Any]) -> dict[str, Any]:
    """The R4B form: deviceName for displayName, one type, no availabilityStatus (the extension stays)."""
    out = {k: v for k, v in resource.items() if k not in ("displayName", "availabilityStatus", "type")}
    if "displayName" in resource:
        out["deviceName"] = [{"name": resource["displayName"], "type": "user-friendly-name"}]
    if resource.get("type"):
        out["type"] = resource["type"][0]
    return out


def udi_di(udi: str) -> str:
    """The device identifier of a GS1 UDI: the GTIN after (01), or the text as it is."""
    text = udi.replace("(", "").replace(")", "")
    return text[2:16] if text.startswith("01") and len(text) >= 16 and text[2:16].isdigit() else udi


def instant(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def _day(day: date) -> str:
    return day.isoformat()
