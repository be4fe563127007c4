"""HTTP ingest: `POST /ingest/{system}` (exports, webhooks) and `POST /fhir[/{type}]` (FHIR REST).

A 2xx answer means the bytes are durably archived, never less. A store that cannot commit
answers 503; a body over the size limit 413, before anything is stored.

Ingest is hospital-wide (a sender's file or message names any department, and the status
answer lists what became of all of it): department-scoped keys get 403 (hub.api.scope).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Query, Request
from fastapi.responses import JSONResponse

from hub.api.deps import IngestorDep  # noqa: TC001  (FastAPI reads the annotations at runtime)
from hub.api.fhir.capability import created_at
from hub.api.scope import whole_hospital
from hub.errors import ConfigError, NotStored
from hub.ingest.http_edge import body_message_id

if TYPE_CHECKING:
    from hub.ingest.http_edge import Ingestor

router = APIRouter(tags=["ingest"], dependencies=[whole_hospital("ingest")])
FHIR_JSON = "application/fhir+json"

_STORE_ERRORS: dict[int | str, dict[str, Any]] = {
    413: {"description": "The body is over HUB_MAX_FILE_BYTES; nothing was stored"},
    503: {"description": "The archive could not commit it; nothing was stored, send again"},
}
_EXPORT_BODY = {
    "requestBody": {
        "required": True,
        "description": "The export file or webhook body, byte for byte (any encoding the mapping reads)",
        "content": {
            media: {"schema": {"type": "string", "format": "binary"}}
            for media in ("application/octet-stream", "text/csv", "application/json", "application/xml")
        },
    }
}
_RESOURCE = {
    "type": "object",
    "required": ["resourceType"],
    "properties": {"resourceType": {"type": "string"}},
}
_OUTCOME = {"content": {FHIR_JSON: {"schema": _RESOURCE}}}
_FHIR_BODY = {
    "requestBody": {
        "required": True,
        "content": {media: {"schema": _RESOURCE} for media in (FHIR_JSON, "application/json")},
    }
}
_FHIR_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"description": "Batch/transaction response Bundle", **_OUTCOME},
    201: {
        "description": "Created: what was applied. `Location` names the resource the facade reads it as "
        "(Device/{asset id}, Task/{id}, InventoryItem/{item id}, SupplyDelivery/{event id})",
        **_OUTCOME,
    },
    400: {"description": "Unreadable or invalid: an OperationOutcome naming the element", **_OUTCOME},
    422: {"description": "Valid FHIR the hub cannot use: an OperationOutcome", **_OUTCOME},
    **_STORE_ERRORS,
}


async def _body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise HTTPException(413, f"body of {int(declared):,} bytes is over the limit of {limit:,} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise HTTPException(413, f"body is over the limit of {limit:,} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


@router.post(
    "/ingest/{system}",
    status_code=202,
    summary="Archive an export file or webhook body",
    responses=_STORE_ERRORS,
    openapi_extra=_EXPORT_BODY,
)
async def ingest(
    request: Request,
    ingestor: IngestorDep,
    system: Annotated[str, Path(description="Source system (hrp, spd, oa, his, fhir, or a site's own)")],
    filename: Annotated[str | None, Query(description="Original file name (shown in dead letters)")] = None,
) -> dict[str, Any]:
    """Store the body as one raw message of `system`; it is translated asynchronously.

    The message id is the `X-Message-Id` header if given, else the file name, else the body's hash.
    Poll `GET /ingest/{system}/{raw_ref}` for the outcome.
    """
    if system not in ingestor.systems:
        raise HTTPException(404, f"unknown system {system!r}; known: {', '.join(ingestor.systems)}")
    payload = await _body(request, ingestor.max_bytes)
    if not payload:
        raise HTTPException(400, "empty body: nothing to ingest")
    message_id = request.headers.get("x-message-id") or filename or body_message_id(payload)
    metadata = {"content_type": request.headers.get("content-type", ""), "peer": _peer(request)}
    if filename:
        metadata["filename"] = filename
    try:
        outcome = await ingestor.store(
            system, payload, message_id=message_id, transport="http", metadata=metadata
        )
    except NotStored as exc:
        raise HTTPException(503, f"not stored, send again later: {exc}") from exc
    except ConfigError as exc:
        raise HTTPException(404, str(exc)) from exc
    ref = outcome.record.raw_ref
    return {
        "raw_ref": ref,
        "duplicate": outcome.duplicate,
        "sha256": outcome.record.sha256,
        "status_url": f"/ingest/{system}/{ref}",
    }


@router.get("/ingest/{system}/{raw_ref}", summary="What became of an ingested message")
async def ingest_status(ingestor: IngestorDep, system: str, raw_ref: str) -> dict[str, Any]:
    status, letters = await ingestor.status(raw_ref)
    if status is None or not raw_ref.startswith(f"{system}:"):
        raise HTTPException(404, f"no {system} message {raw_ref!r} in the archive")
    return {
        "raw_ref": raw_ref,
        "status": status.status,
        "events": status.events,
        "failures": status.failures,
        "skipped": status.skipped,
        "units": status.units,
        "error": status.error,
        "dead_letters": [
            {
                "position": d.position,
                "code": d.code,
                "reason": d.reason,
                "location": d.location.as_dict(),
                "status": d.status,
            }
            for d in letters
        ],
    }


async def _fhir(request: Request, ingestor: Ingestor, resource_type: str | None) -> JSONResponse:
    payload = await _body(request, ingestor.max_bytes)
    try:
        answer = await ingestor.fhir(payload, request.headers.get("content-type"), resource_type)
    except NotStored as exc:
        raise HTTPException(503, f"not stored, send again later: {exc}") from exc
    headers = {"X-Hub-Raw-Ref": answer.raw_ref} if answer.raw_ref else {}
    if answer.status == 201 and resource_type and (created := created_at(resource_type, answer.subjects)):
        headers["Location"] = f"{str(request.base_url).rstrip('/')}/fhir/{created}"
    return JSONResponse(answer.body, status_code=answer.status, media_type=FHIR_JSON, headers=headers)


@router.post(
    "/fhir",
    summary="FHIR batch or transaction Bundle",
    response_class=JSONResponse,
    responses=_FHIR_RESPONSES,
    openapi_extra=_FHIR_BODY,
)
async def fhir_bundle(request: Request, ingestor: IngestorDep) -> JSONResponse:
    """A batch lands its good entries; a transaction with any bad entry lands nothing (FHIR R5 3.2.0.13)."""
    return await _fhir(request, ingestor, None)


@router.post(
    "/fhir/{resource_type}",
    summary="One FHIR resource",
    response_class=JSONResponse,
    responses=_FHIR_RESPONSES,
    openapi_extra=_FHIR_BODY,
)
async def fhir_resource(request: Request, ingestor: IngestorDep, resource_type: str) -> JSONResponse:
    """Device, Location, SupplyDelivery, SupplyRequest, Task, InventoryReport, InventoryItem.

    R5 by default; the R4B forms fhir.resources offers are accepted too (`fhirVersion=4.3`).
    """
    return await _fhir(request, ingestor, resource_type)


def _peer(request: Request) -> str:
    return f"{request.client.host}:{request.client.port}" if request.client else ""
