"""Location: the hospital's departments, and the places inside them (a room, a store, a bed area).

A department's Location id is its code when the code is a valid FHIR id, else `d-<digest>`; a
place's is `<department id>.<digest of the place>`, `partOf` its department. Both come from the
read models (the places devices stand and stock lies); nothing is stored for them.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Any

DEPARTMENT_SYSTEM = "urn:hospital-hub:id:department"
PLACE_SYSTEM = "urn:hospital-hub:id:place"
_FHIR_ID = re.compile(r"^[A-Za-z0-9\-]{1,40}$")
_ROLE_CODES = "http://terminology.hl7.org/CodeSystem/v3-RoleCode"
_PHYSICAL = "http://terminology.hl7.org/CodeSystem/location-physical-type"


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def department_id(code: str) -> str:
    return code if _FHIR_ID.match(code) else f"d-{_digest(code)}"


def place_id(department_code: str, place: str) -> str:
    return f"{department_id(department_code)}.{_digest(place)}"


@dataclass(frozen=True, slots=True)
class Place:
    """A department (`place` None) or a place inside one, as the read models name it."""

    department_code: str
    department_name: str | None
    place: str | None = None

    @property
    def id(self) -> str:
        if self.place is None:
            return department_id(self.department_code)
        return place_id(self.department_code, self.place)


def location(place: Place) -> dict[str, Any]:
    """The R5 Location of a department or a place (R4B: see `r4b`)."""
    dept_name = place.department_name or place.department_code
    if place.place is None:
        return {
            "resourceType": "Location",
            "id": place.id,
            "identifier": [{"system": DEPARTMENT_SYSTEM, "value": place.department_code}],
            "status": "active",
            "mode": "instance",
            "name": dept_name,
            "type": [{"coding": [{"system": _ROLE_CODES, "code": "HU", "display": "Hospital unit"}]}],
        }
    return {
        "resourceType": "Location",
        "id": place.id,
        "identifier": [{"system": PLACE_SYSTEM, "value": f"{place.department_code}|{place.place}"}],
        "status": "active",
        "mode": "instance",
        "name": f"{dept_name} {place.place}",
        "description": place.place,
        "form": {"coding": [{"system": _PHYSICAL, "code": "area", "display": "Area"}]},
        "partOf": {"reference": f"Location/{department_id(place.department_code)}", "display": dept_name},
    }


def r4b(resource: dict[str, Any]) -> dict[str, Any]:
    """R4B names R5's `form` `physicalType`."""
    out = {k: v for k, v in resource.items() if k != "form"}
    if "form" in resource:
        out["physicalType"] = resource["form"]
    return out
