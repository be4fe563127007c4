"""Parsing a FHIR REST request body into validated resources: one resource, or a Bundle's entries.

`read_request` is what the translator uses: it raises `FhirRejected` only when the body cannot be
read at all (too large, not JSON/XML, unsafe XML, not a batch/transaction Bundle), and returns a
single resource that fails validation as `Invalid`, with every problem and its element path.
`parse_request` is what the HTTP edge uses: the same, but an invalid resource raises too, so a
`POST /fhir/{type}` can answer with `operation_outcome(exc.issues)` at once.

A Bundle's shell (type, entry.request...) is validated without the entry resources, and each
entry's resource on its own: one bad entry is that entry's problem, not the Bundle's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from adapters.fhir.document import Body, JsonBody, MediaType, XmlBody, media_type, read_body
from adapters.fhir.errors import FhirRejected
from adapters.fhir.issues import Issue
from adapters.fhir.validate import Invalid, Valid, validate
from adapters.fhir.xml import split_tag

if TYPE_CHECKING:
    from adapters.fhir.mapping import FhirMapping
    from adapters.fhir.versions import FhirVersion

BundleKind = Literal["batch", "transaction"]
_METHODS_WITH_RESOURCE = frozenset({"POST", "PUT"})


@dataclass(frozen=True, slots=True)
class Entry:
    """One Bundle entry: its position, request and (validated or not) resource."""

    index: int
    method: str | None
    url: str | None
    full_url: str | None
    resource: Valid | Invalid


@dataclass(frozen=True, slots=True)
class ParsedBundle:
    """A batch or transaction Bundle: its kind, id, the release of its shell, and its entries."""

    kind: BundleKind
    id: str | None
    version: FhirVersion
    entries: tuple[Entry, ...]


Parsed = Valid | Invalid | ParsedBundle


def read_request(
    payload: bytes, content_type: str | None, mapping: FhirMapping, *, expected_type: str | None = None
) -> Parsed:
    """Read a request body. Raises FhirRejected when it cannot be read as a resource at all."""
    media = media_type(content_type, payload)
    body = read_body(payload, media, mapping.limits)
    if expected_type is not None and body.resource_type != expected_type:
        reason = f"the body is a {body.resource_type}, but the request is for {expected_type}"
        raise FhirRejected("invalid", [Issue("invalid", f"{body.resource_type}.resourceType", reason)])
    if body.resource_type == "Bundle":
        return _read_bundle(body, media, mapping)
    outcome = validate(body, explicit=media.version, default=mapping.versions.default)
    if (
        isinstance(outcome, Invalid)
        and outcome.issues[0].code == "not-supported"
        and outcome.issues[0].path
        in {
            None,
            body.resource_type,
        }
    ):
        raise FhirRejected("unsupported_type", outcome.issues)
    return outcome


def parse_request(
    payload: bytes, content_type: str | None, mapping: FhirMapping, *, expected_type: str | None = None
) -> Valid | ParsedBundle:
    """Like `read_request`, but a resource that fails validation raises FhirRejected("invalid") too."""
    parsed = read_request(payload, content_type, mapping, expected_type=expected_type)
    if isinstance(parsed, Invalid):
        raise FhirRejected("invalid", parsed.issues)
    return parsed


def _read_bundle(body: Body, media: MediaType, mapping: FhirMapping) -> ParsedBundle:
    shell, resources = _split(body)
    outcome = validate(shell, explicit=media.version, default=mapping.versions.default)
    if isinstance(outcome, Invalid):
        raise FhirRejected("invalid", outcome.issues)
    bundle = outcome.model
    kind = bundle.type
    if kind not in {"batch", "transaction"}:
        reason = f"Bundle.type is {kind!r}; the ingest takes batch or transaction Bundles"
        raise FhirRejected("invalid", [Issue("not-supported", "Bundle.type", reason)])
    entries = bundle.entry or []
    if len(entries) > mapping.limits.max_entries:
        reason = f"the Bundle has {len(entries):,} entries; the limit is {mapping.limits.max_entries:,}"
        raise FhirRejected("too_large", [Issue("too-long", "Bundle.entry", reason)])
    # Entries are read as the shell's release when it was given; else each as it validates.
    explicit = media.version or (outcome.version if mapping.versions.default != "auto" else None)
    out = [
        _entry(i, entry, resources[i] if i < len(resources) else None, explicit, mapping)
        for i, entry in enumerate(entries)
    ]
    return ParsedBundle(kind=kind, id=bundle.id, version=outcome.version, entries=tuple(out))


def _entry(
    index: int,
    entry: Any,
    resource: Body | Invalid | None,
    explicit: FhirVersion | None,
    mapping: FhirMapping,
) -> Entry:
    request = entry.request
    method = request.method if request is not None else None
    url = request.url if request is not None else None
    root = f"Bundle.entry[{index}]"
    checked: Valid | Invalid
    if isinstance(resource, Invalid):
        checked = resource
    elif method is not None and method not in _METHODS_WITH_RESOURCE:
        reason = f"request.method {method} is not supported: the ingest accepts resources (POST, PUT)"
        checked = Invalid(
            resource.resource_type if resource else "Resource",
            (Issue("not-supported", f"{root}.request.method", reason),),
        )
    elif resource is None:
        checked = Invalid(
            "Resource", (Issue("required", f"{root}.resource", "the entry carries no resource"),)
        )
    elif resource.resource_type == "Bundle":
        reason = "a Bundle inside a Bundle entry is not supported: send its entries in the outer Bundle"
        checked = Invalid("Bundle", (Issue("not-supported", f"{root}.resource", reason),))
    else:
        checked = validate(resource, explicit=explicit, default=mapping.versions.default)
    return Entry(index=index, method=method, url=url, full_url=entry.fullUrl, resource=checked)


def _split(body: Body) -> tuple[Body, list[Body | Invalid | None]]:
    """The Bundle without its entry resources, and those resources, one per entry (None: absent)."""
    if isinstance(body, JsonBody):
        return _split_json(body)
    if isinstance(body, XmlBody):
        return _split_xml(body)
    raise TypeError(type(body).__name__)


def _split_json(body: JsonBody) -> tuple[Body, list[Body | Invalid | None]]:
    entries = body.value.get("entry")
    if not isinstance(entries, list):
        return body, []
    shell_entries: list[Any] = []
    resources: list[Body | Invalid | None] = []
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict) or "resource" not in entry:
            shell_entries.append(entry)
            resources.append(None)
            continue
        shell_entries.append({k: v for k, v in entry.items() if k != "resource"})
        resource = entry["resource"]
        kind = resource.get("resourceType") if isinstance(resource, dict) else None
        if isinstance(kind, str) and kind:
            resources.append(JsonBody(resource_type=kind, value=resource))
        else:
            path = f"Bundle.entry[{i}].resource.resourceType"
            resources.append(
                Invalid("Resource", (Issue("required", path, "the entry's resource has no resourceType"),))
            )
    return JsonBody(resource_type="Bundle", value={**body.value, "entry": shell_entries}), resources


def _split_xml(body: XmlBody) -> tuple[Body, list[Body | Invalid | None]]:
    resources: list[Body | Invalid | None] = []
    for i, entry in enumerate(e for e in body.element if split_tag(e.tag)[1] == "entry"):
        holders = [c for c in entry if split_tag(c.tag)[1] == "resource"]
        if not holders:
            resources.append(None)
            continue
        inner = list(holders[0])
        for holder in holders:
            entry.remove(holder)  # the shell is validated without it
        if len(holders) == 1 and len(inner) == 1:
            resources.append(XmlBody(resource_type=split_tag(inner[0].tag)[1], element=inner[0]))
        else:
            reason = "entry.resource must hold exactly one resource element"
            resources.append(
                Invalid("Resource", (Issue("structure", f"Bundle.entry[{i}].resource", reason),))
            )
    return XmlBody(resource_type="Bundle", element=body.element), resources


__all__ = ["Entry", "Invalid", "Parsed", "ParsedBundle", "Valid", "parse_request", "read_request"]
