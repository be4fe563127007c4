"""What every FHIR route shares: the documented answers, a release's form of a resource, a search answer."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from hub.api.fhir.bundle import searchset
from hub.api.fhir.wire import FHIR_JSON, FHIR_XML

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from fastapi import Request
    from fastapi.responses import Response

    from hub.api.fhir.bundle import Paging
    from hub.api.fhir.wire import Wire

_RESOURCE = {
    "type": "object",
    "required": ["resourceType"],
    "properties": {"resourceType": {"type": "string"}},
}
_XML = {"type": "string"}
_CONTENT = {FHIR_JSON: {"schema": _RESOURCE}, FHIR_XML: {"schema": _XML}}
RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"content": _CONTENT, "description": "The resource or a searchset Bundle (R5, or R4B on request)"},
    304: {"description": "Not modified: If-None-Match holds the current ETag"},
    406: {"content": _CONTENT, "description": "A format or FHIR release not served: an OperationOutcome"},
}


def in_release(
    wire: Wire, resource: dict[str, Any], r4b: Callable[[dict[str, Any]], dict[str, Any]] | None
) -> dict[str, Any]:
    """`resource` (R5-shaped) in the release the client asked for."""
    return r4b(resource) if wire.version == "R4B" and r4b is not None else resource


def search_answer(
    request: Request,
    wire: Wire,
    resources: Sequence[dict[str, Any]],
    *,
    total: int,
    paging: Paging,
    r4b: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
) -> Response:
    converted = [in_release(wire, r, r4b) for r in resources]
    return wire.respond(searchset(request, converted, total=total, paging=paging))
