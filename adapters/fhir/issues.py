"""Problems with a FHIR body, each naming the element it is about, ready for an OperationOutcome.

An `Issue` carries a FHIR IssueType code, a FHIRPath-like element path
(`SupplyDelivery.suppliedItem[0].quantity.value`) and a reason. `issues_from_validation` turns
pydantic's errors (as fhir.resources raises them) into issues: the error's `loc` becomes the
path, its type the code. Reasons never repeat the offending value: a FHIR body can carry patient
data, and reasons travel to dead letters and logs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

Severity = Literal["fatal", "error", "warning", "information"]
IssueCode = Literal[
    "invalid", "structure", "required", "value", "not-supported", "processing", "too-long", "informational"
]

_NAME = re.compile(r"^_?[A-Za-z][A-Za-z0-9_]*$")

# pydantic / fhir_core error types -> FHIR IssueType.
_STRUCTURE = frozenset({
    "extra_forbidden", "list_type", "dict_type", "model_type", "model_attributes_type", "is_instance_of",
    "tuple_type", "dataclass_type", "union_tag_invalid", "union_tag_not_found",
})  # fmt: skip
_REQUIRED = frozenset({"missing", "model_field_validation.missing"})
# fhir_core's own check that a value is an object of the element's type; it adds `root` to the loc.
_WRONG_SHAPE = "model_validation_format"
_JSON_TYPES: dict[type, str] = {
    list: "a list",
    str: "a string",
    int: "a number",
    bool: "a boolean",
    dict: "an object",
}

# Elements from other FHIR releases, and what became of them: the most common reason a real
# resource fails validation is that it was written for another version.
_HINTS: dict[tuple[str, str, str], str] = {
    ("Device", "udi", "*"): "an STU3 element: R4 and later renamed it udiCarrier",
    ("Device", "model", "*"): "an STU3 element: R4 and later renamed it modelNumber",
    ("Device", "patient", "R5"): "R5 removed Device.patient (R4B still has it)",
    ("Device", "deviceName", "R5"): "an R4/R4B element: R5 renamed it name",
    ("Device", "statusReason", "R5"): "an R4/R4B element: R5 dropped it (see availabilityStatus)",
    ("Device", "name", "R4B"): "an R5 element: R4B calls it deviceName",
    ("SupplyDelivery", "suppliedItem", "R5"): "R5 made suppliedItem a list (R4B has a single one)",
    ("SupplyRequest", "itemCodeableConcept", "R5"): "an R4/R4B element: R5 uses item (CodeableReference)",
    ("SupplyRequest", "reasonCode", "R5"): "an R4/R4B element: R5 uses reason (CodeableReference)",
    ("Task", "reasonCode", "R5"): "an R4/R4B element: R5 uses reason (CodeableReference)",
}


@dataclass(frozen=True, slots=True)
class Issue:
    """One problem: its IssueType code, the element path (None: the whole body) and the reason."""

    code: IssueCode
    path: str | None
    reason: str
    severity: Severity = "error"

    def text(self) -> str:
        return f"{self.path}: {self.reason}" if self.path else self.reason


def element_path(root: str, loc: Sequence[Any]) -> str:
    """`root` plus a pydantic `loc` as a FHIRPath-like path: `Device.udiCarrier[0].carrierHRF`.

    `_status` (a primitive's extension in FHIR JSON) is the element `status`; parts pydantic adds
    for unions and validators (`function-after[...]`) are not elements and are left out.
    """
    path = root
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        elif isinstance(part, str) and _NAME.match(part):
            name = "resourceType" if part == "resource_type" else part.lstrip("_")
            path += f".{name}"
    return path


def issues_from_validation(
    errors: Iterable[Any], *, resource_type: str, version: str, root: str | None = None
) -> list[Issue]:
    """Issues for pydantic's `ValidationError.errors()` of one resource validated as `version`."""
    issues: list[Issue] = []
    seen: set[tuple[str, str]] = set()
    for error in errors:
        loc = tuple(error.get("loc", ()))
        if loc and loc[-1] == "root" and error.get("type") == _WRONG_SHAPE:
            loc = loc[:-1]
        path = element_path(root or resource_type, loc)
        code, reason = _describe(error, resource_type, loc, version)
        if (path, reason) in seen:
            continue  # a union reports one problem once per branch
        seen.add((path, reason))
        issues.append(Issue(code=code, path=path, reason=reason))
    return issues


def _describe(error: Any, resource_type: str, loc: tuple[Any, ...], version: str) -> tuple[IssueCode, str]:
    kind = str(error.get("type", ""))
    if kind == _WRONG_SHAPE:
        expected = error.get("ctx", {}).get("model_class", "an object")
        got = _JSON_TYPES.get(type(error.get("input")), "another type")
        hint = _hint(resource_type, loc, version)
        reason = f"expected one {expected} (a JSON object), got {got}"
        return "structure", f"{reason} ({hint})" if hint else reason
    if kind in _REQUIRED:
        return "required", "required element is missing"
    if kind == "extra_forbidden":
        reason = f"unknown element in FHIR {version}"
        hint = _hint(resource_type, loc, version)
        return "structure", f"{reason} ({hint})" if hint else reason
    if kind == "fhir-validation-wrong-resource-type":
        return "invalid", "resourceType does not match the resource expected here"
    message = _message(error)
    if kind in _STRUCTURE:
        hint = _hint(resource_type, loc, version)
        return "structure", f"{message} ({hint})" if hint else message
    return "value", message


def _message(error: Any) -> str:
    message = str(error.get("msg", "invalid value")).strip()
    # fhir_core prefixes its own checks with pydantic's "Value error, "; the rest is the reason.
    return message.removeprefix("Value error, ") or "invalid value"


def _hint(resource_type: str, loc: tuple[Any, ...], version: str) -> str | None:
    if len(loc) != 1 or not isinstance(loc[0], str):
        return None
    element = loc[0]
    return _HINTS.get((resource_type, element, version)) or _HINTS.get((resource_type, element, "*"))
