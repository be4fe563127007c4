"""FHIR reads: `GET /fhir/metadata`, `GET /fhir/Device/{id}`, `GET /fhir/Device?...` (R5, JSON).

The asset registry seen through FHIR, for SMART-style apps and FHIR clients: the same roles and
department scope as `/assets` (a device outside a scoped key's department is 404, like an unknown
one), answers as `application/fhir+json`, errors as OperationOutcome naming the parameter.
`identifier=system|value` searches every identifier the hub links to the device: a system of the
hub's own (`urn:hospital-hub:id:<scheme>`) narrows to that scheme; any other system matches by value.
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from hub.api.deps import ClockDep, EngineDep  # noqa: TC001  (FastAPI reads the annotations at runtime)
from hub.api.fhir_resources import (
    FHIR_JSON,
    capability_statement,
    device,
    outcome,
    scheme_of,
    searchset,
)
from hub.api.params import MAX_OFFSET
from hub.api.scope import ScopeDep  # noqa: TC001
from projections.assets.queries import get_asset, list_assets

router = APIRouter(prefix="/fhir", tags=["fhir"])
MAX_COUNT = 500
_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"content": {FHIR_JSON: {"schema": {"type": "object"}}}, "description": "The resource or Bundle"},
}


def fhir_response(body: dict[str, Any], status: int = 200) -> JSONResponse:
    return JSONResponse(body, status_code=status, media_type=FHIR_JSON)


def _invalid(parameter: str, diagnostics: str) -> JSONResponse:
    return fhir_response(outcome("invalid", diagnostics, expression=parameter), 400)


@router.get("/metadata", summary="CapabilityStatement: what this FHIR facade supports", responses=_RESPONSES)
async def metadata(clock: ClockDep, request: Request, scope: ScopeDep) -> JSONResponse:
    del scope  # the scope layer applies; the statement is the same for every caller
    return fhir_response(
        capability_statement(software=request.app.title, version=request.app.version, now=clock.now())
    )


@router.get("/Device/{device_id}", summary="One device from the asset registry", responses=_RESPONSES)
async def read_device(device_id: str, engine: EngineDep, scope: ScopeDep) -> JSONResponse:
    def load() -> dict[str, Any] | None:
        with engine.connect() as conn:
            return get_asset(conn, device_id)

    row = await run_in_threadpool(load)
    if row is None or not scope.sees(row.get("department_code"), row.get("department_name")):
        return fhir_response(outcome("not-found", f"Device/{device_id} is not known"), 404)
    return fhir_response(device(row))


@router.get("/Device", summary="Search devices (identifier, status, location, type)", responses=_RESPONSES)
async def search_devices(
    request: Request,
    engine: EngineDep,
    scope: ScopeDep,
    *,
    identifier: Annotated[str | None, Query(description="system|value, |value or value")] = None,
    status: Annotated[str | None, Query(description="active | inactive")] = None,
    location: Annotated[str | None, Query(description="Location/<department code>, or code or name")] = None,
    type_: Annotated[str | None, Query(alias="type", description="Category code or name")] = None,
    count: Annotated[str, Query(alias="_count", description=f"Page size, 1 to {MAX_COUNT}")] = "50",
    offset: Annotated[str, Query(alias="_offset", description="Resources to skip")] = "0",
) -> JSONResponse:
    if not count.isdigit() or not 1 <= int(count) <= MAX_COUNT:
        return _invalid("_count", f"_count={count!r}: a whole number from 1 to {MAX_COUNT}")
    if not offset.isdigit() or int(offset) > MAX_OFFSET:
        return _invalid("_offset", f"_offset={offset!r}: a whole number from 0 to {MAX_OFFSET:,}")
    if status not in (None, "active", "inactive"):
        return _invalid("status", f"status={status!r}: active or inactive")
    value = identifier
    if identifier is not None and "|" in identifier:
        system, _, value = identifier.partition("|")
        scheme = scheme_of(system) if system else None
        value = f"{scheme}:{value}" if scheme else value
    department = location.removeprefix("Location/") if location else None
    department, reachable = scope.department_filter(department)
    size, skip = int(count), int(offset)

    def find() -> tuple[list[dict[str, Any]], int]:
        with engine.connect() as conn:
            return list_assets(
                conn,
                department=department,
                category=type_,
                identifier=value or None,
                active=None if status is None else status == "active",
                limit=size,
                offset=skip,
            )

    rows, total = await run_in_threadpool(find) if reachable else ([], 0)
    asked = [(k, v) for k, v in request.query_params.multi_items() if k != "_offset"]
    page_url = f"Device?{urlencode([*asked, ('_offset', '')])}"
    return fhir_response(
        searchset(
            [device(r) for r in rows],
            total=total,
            self_url=str(request.url),
            page_url=page_url,
            count=size,
            offset=skip,
        )
    )
