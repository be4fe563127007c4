"""Validating one resource with fhir.resources, choosing the release, naming every bad element.

Release choice: an explicit one (Content-Type `fhirVersion`, or the mapping's default) is the
only one tried. Otherwise R5 first and, when R5 fails, R4B: a resource valid in R4B is read as
R4B and the fallback is recorded. When both fail, the issues of the release with fewer problems
are reported (R5 on a tie), with a note saying both were tried.

fhir.resources does not enforce required value sets (`Device.status: "bogus"` passes), so the
codes of required bindings are checked here after validation. And it can fail with a bare
KeyError/TypeError on a nested resource of unknown type; that is turned into an issue naming
the element, never let through as a crash.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Any

import structlog
from fhir_core.utils import is_primitive_type
from pydantic import BaseModel, ValidationError

from adapters.fhir.issues import Issue, issues_from_validation
from adapters.fhir.versions import ALL_SUPPORTED, SUPPORTED, VERSIONS, model_class

if TYPE_CHECKING:
    from collections.abc import Iterator

    from adapters.fhir.document import Body
    from adapters.fhir.mapping import VersionChoice
    from adapters.fhir.versions import FhirVersion

logger = structlog.get_logger()

# Value sets fhir.resources lists in full for a code element but does not enforce. A list that
# ends in "+" was cut short by the generator (an extensible or long binding): not checked.
_TRUNCATED = "+"
# Task.status is cut short in the generated model; its required value set in full:
TASK_STATUSES = frozenset({
    "draft", "requested", "received", "accepted", "rejected", "ready", "cancelled", "in-progress", "on-hold",
    "failed", "completed", "entered-in-error",
})  # fmt: skip


@dataclass(frozen=True, slots=True)
class Valid:
    """A validated resource: its fhir.resources model, the release read, and whether R5 failed first."""

    resource_type: str
    version: FhirVersion
    model: Any
    fell_back: bool = False


@dataclass(frozen=True, slots=True)
class Invalid:
    """A resource that failed validation (or is not accepted), with every problem found."""

    resource_type: str
    issues: tuple[Issue, ...]


def validate(
    body: Body, *, explicit: FhirVersion | None, default: VersionChoice, root: str | None = None
) -> Valid | Invalid:
    """Validate `body` as the chosen release, or R5 then R4B when the choice is automatic."""
    resource_type = body.resource_type
    if resource_type not in ALL_SUPPORTED:
        accepted = ", ".join(sorted(ALL_SUPPORTED - {"Bundle"}))
        reason = (
            f"resource type {resource_type} is not accepted by the hub's FHIR ingest (accepted: {accepted})"
        )
        return Invalid(resource_type, (Issue("not-supported", root or resource_type, reason),))
    order: tuple[FhirVersion, ...] = (
        (explicit,) if explicit else VERSIONS if default == "auto" else (default,)
    )
    attempts: list[tuple[FhirVersion, list[Issue]]] = []
    absent: list[Issue] = []
    for version in order:
        if resource_type not in SUPPORTED[version]:
            reason = f"{resource_type} does not exist in FHIR {version}" + (
                "; it is new in R5" if version == "R4B" else ""
            )
            absent.append(Issue("not-supported", root or resource_type, reason))
            continue
        outcome = _validate_as(body.data(version), resource_type, version, root)
        if isinstance(outcome, list):
            attempts.append((version, outcome))
            continue
        fell_back = version != order[0]
        if fell_back:
            logger.info("fhir_release_fallback", resource_type=resource_type, read_as=version, tried=order[0])
        return Valid(resource_type, version, outcome, fell_back)
    # A release without the type is only the answer when no release has it.
    return Invalid(resource_type, tuple(_best(attempts, resource_type) if attempts else absent))


def _best(attempts: list[tuple[FhirVersion, list[Issue]]], resource_type: str) -> list[Issue]:
    if len(attempts) == 1:
        return attempts[0][1]
    # Fewest problems wins; on a tie, the release whose problems are values rather than shape
    # (an R4B resource with one bad value fails R5 on shape), then R5 (min keeps the first).
    version, issues = min(attempts, key=lambda a: (len(a[1]), sum(i.code == "structure" for i in a[1])))
    others = ", ".join(
        f"{v} ({len(i)} problem{'s' if len(i) != 1 else ''})" for v, i in attempts if v != version
    )
    note = Issue(
        "informational",
        None,
        f"{resource_type} was read as each release without fhirVersion; none validated. The problems above "
        f"are from FHIR {version}; also tried: {others}. Send fhirVersion in the Content-Type to choose.",
        severity="information",
    )
    return [*issues, note]


def _validate_as(data: dict[str, Any], resource_type: str, version: FhirVersion, root: str | None) -> Any:
    """The validated model, or the list of issues."""
    klass = model_class(version, resource_type)
    if klass is None:
        return [
            Issue("not-supported", root or resource_type, f"fhir.resources has no {version} {resource_type}")
        ]
    try:
        model = klass.model_validate(data)
    except ValidationError as exc:
        return issues_from_validation(exc.errors(), resource_type=resource_type, version=version, root=root)
    except (KeyError, TypeError, ValueError, AttributeError, IndexError, AssertionError) as exc:
        # fhir_core looks nested resources up by resourceType without checking it exists.
        return _library_failure(data, version, root or resource_type, exc)
    problems = list(_binding_issues(model, root or resource_type))
    if resource_type == "Task" and model.status is not None and model.status not in TASK_STATUSES:
        problems.append(
            Issue("value", f"{root or resource_type}.status", _not_in("Task.status", TASK_STATUSES))
        )
    return problems or model


def _library_failure(data: dict[str, Any], version: FhirVersion, root: str, exc: Exception) -> list[Issue]:
    issues = [
        Issue("invalid", path, f"resourceType {kind!r} is not a FHIR {version} resource type")
        for path, kind in _nested_types(data, root)
        if not isinstance(kind, str) or model_class(version, kind) is None
    ]
    if issues:
        return issues
    logger.warning("fhir_library_failed", error=type(exc).__name__)
    return [Issue("processing", root, f"fhir.resources could not read this resource ({type(exc).__name__})")]


def _nested_types(data: Any, path: str) -> Iterator[tuple[str, Any]]:
    stack: list[tuple[Any, str, bool]] = [(data, path, True)]
    while stack:
        node, where, top = stack.pop()
        if isinstance(node, dict):
            if not top and "resourceType" in node:
                yield f"{where}.resourceType", node["resourceType"]
            stack.extend((v, f"{where}.{k}", False) for k, v in node.items() if isinstance(v, dict | list))
        elif isinstance(node, list):
            stack.extend(
                (v, f"{where}[{i}]", False) for i, v in enumerate(node) if isinstance(v, dict | list)
            )


def _binding_issues(model: BaseModel, path: str) -> Iterator[Issue]:
    """Codes outside a required value set, anywhere in the resource (contained ones included)."""
    stack: list[tuple[BaseModel, str]] = [(model, path)]
    while stack:
        node, where = stack.pop()
        coded, nested = _fields_of(type(node))
        for attr, alias, allowed in coded:
            value = getattr(node, attr, None)
            values = value if isinstance(value, list) else [value]
            for i, code in enumerate(values):
                if code is not None and code not in allowed:
                    at = f"{where}.{alias}" + (f"[{i}]" if isinstance(value, list) else "")
                    yield Issue("value", at, _not_in(f"{type(node).__name__}.{alias}", allowed))
        for attr, alias in nested:
            value = getattr(node, attr, None)
            if isinstance(value, list):
                stack.extend(
                    (v, f"{where}.{alias}[{i}]") for i, v in enumerate(value) if isinstance(v, BaseModel)
                )
            elif isinstance(value, BaseModel):
                stack.append((value, f"{where}.{alias}"))


@cache
def _fields_of(
    klass: type[BaseModel],
) -> tuple[tuple[tuple[str, str, frozenset[str]], ...], tuple[tuple[str, str], ...]]:
    coded: list[tuple[str, str, frozenset[str]]] = []
    nested: list[tuple[str, str]] = []
    for attr, info in klass.model_fields.items():
        extra = info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}
        if not extra.get("element_property"):
            continue
        alias = info.alias or attr
        if is_primitive_type(info):
            allowed = extra.get("enum_values")
            if isinstance(allowed, list) and allowed and _TRUNCATED not in allowed:
                coded.append((attr, alias, frozenset(str(a) for a in allowed)))
        else:
            nested.append((attr, alias))
    return tuple(coded), tuple(nested)


def _not_in(element: str, allowed: frozenset[str]) -> str:
    return f"code is not in the required value set of {element} ({', '.join(sorted(allowed))})"
