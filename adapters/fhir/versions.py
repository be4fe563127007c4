"""The FHIR releases the hub reads (R5 and R4B, as fhir.resources models them) and their types."""

from __future__ import annotations

from functools import cache
from typing import Any, Literal

import fhir.resources
import fhir.resources.R4B
from fhir_core.utils import determine_version_prefix

FhirVersion = Literal["R5", "R4B"]
VERSIONS: tuple[FhirVersion, ...] = ("R5", "R4B")

# Resource types the ingest accepts, per release (InventoryReport/InventoryItem are new in R5).
_COMMON = frozenset({"Device", "Location", "SupplyDelivery", "SupplyRequest", "Task", "Bundle"})
SUPPORTED: dict[FhirVersion, frozenset[str]] = {
    "R5": _COMMON | {"InventoryReport", "InventoryItem"},
    "R4B": _COMMON,
}
ALL_SUPPORTED = SUPPORTED["R5"] | SUPPORTED["R4B"]

_MODULES = {"R5": fhir.resources, "R4B": fhir.resources.R4B}


@cache
def type_prefix(version: FhirVersion) -> str:
    """fhir_core's prefix for the type names of a release (its own: `R4.` for R4B, empty for R5)."""
    return str(determine_version_prefix(_MODULES[version].__name__))


@cache
def model_class(version: FhirVersion, type_name: str) -> Any | None:
    """The fhir.resources model class for a resource or data type, or None when it has none."""
    try:
        return _MODULES[version].get_fhir_model_class(type_name)
    except (ValueError, AttributeError):
        return None


def version_from_parameter(value: str) -> FhirVersion | None:
    """The release a Content-Type `fhirVersion` parameter names: 4.0/4.3 read as R4B, 5.0 as R5.

    R4 (4.0) is read with the R4B models: the resources the hub accepts did not change between
    them. Anything else (STU3, DSTU2, a future release) is None: not supported.
    """
    parts = value.strip().split(".")
    major_minor = ".".join(parts[:2])
    if major_minor in {"4.0", "4.3"}:
        return "R4B"
    if major_minor == "5.0":
        return "R5"
    return None
