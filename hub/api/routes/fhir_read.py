"""FHIR reads of the asset registry: `GET /fhir/metadata`, `GET /fhir/Device/{id}`, `GET /fhir/Device?...`.

The same roles and department scope as `/assets` (a device outside a scoped key's department is
404, like an unknown one); R5 JSON unless the client asks otherwise (hub.api.fhir.wire); errors
are OperationOutcome naming the parameter. Search parameters: hub.api.fhir.capability.SERVED.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response  # noqa: TC002  (FastAPI reads the return annotation)

from hub.api.deps import ClockDep, EngineDep, IngestorDep, ZoneDep  # noqa: TC001  (FastAPI reads them)
from hub.api.fhir import device as devices
from hub.api.fhir.answer import RESPONSES, in_release, search_answer
from hub.api.fhir.bundle import PagingDep, invalid, not_found, updated_range
from hub.api.fhir.capability import capability_statement
from hub.api.fhir.places import department_id, place_id
from hub.api.fhir.wire import WireDep, read
from hub.api.scope import Scope, ScopeDep  # noqa: TC001
from projections.assets.availability import availability_of
from projections.assets.queries import list_assets, list_places

if TYPE_CHECKING:
    from sqlalchemy import Connection

router = APIRouter(prefix="/fhir", tags=["fhir"])
LastUpdated = Annotated[
    list[str] | None, Query(alias="_lastUpdated", description="[eq|ge|gt|le|lt]date or dateTime; repeatable")
]


@router.get("/metadata", summary="CapabilityStatement: what this FHIR facade supports", responses=RESPONSES)
async def metadata(clock: ClockDep, request: Request, scope: ScopeDep, wire: WireDep) -> Response:
    del scope  # the scope layer applies; the statement is the same for every caller
    statement = capability_statement(
        software=request.app.title, version=request.app.version, now=clock.now(), release=wire.version
    )
    return wire.respond(statement)


@router.get("/Device/{device_id}", summary="One device from the asset registry", responses=RESPONSES)
async def read_device(
    device_id: str,
    *,
    request: Request,
    engine: EngineDep,
    scope: ScopeDep,
    wire: WireDep,
    clock: ClockDep,
    zone: ZoneDep,
) -> Response:
    today = clock.now().astimezone(zone).date()

    def load() -> dict[str, Any] | None:
        with engine.connect() as conn:
            row = scope.asset(conn, device_id)
            if row is None:
                return None
            return devices.device(row, availability_of(conn, [row["asset_id"]], today).get(row["asset_id"]))

    found = await run_in_threadpool(load)
    if found is None:
        raise not_found(f"Device/{device_id}")
    return read(request, wire, in_release(wire, found, devices.r4b))


def _location_filter(location: str, places: list[dict[str, Any]]) -> tuple[str, str | None, str | None]:
    """(department code, its name, place or None) a `location` parameter names; an unknown id is
    taken as a department code or name."""
    wanted = location.removeprefix("Location/")
    for row in places:
        code, name = row["department_code"], row["department_name"]
        if wanted == department_id(code):
            return code, name, None
        if row["location"] and wanted == place_id(code, row["location"]):
            return code, name, row["location"]
    return wanted, wanted, None


def _department(scope: Scope, location: str | None, conn: Connection) -> tuple[str | None, str | None, bool]:
    """(department filter, place filter, whether anything can match) for a Device search."""
    if not location:
        department, reachable = scope.department_filter(None)
        return department, None, reachable
    code, name, place = _location_filter(location, list_places(conn))
    if scope.scoped:  # the key may be scoped by the name while the search names the code
        return scope.department, place, scope.sees(code, name)
    return code, place, True


@router.get(
    "/Device",
    summary="Search devices (identifier, udi-di, status, location, type, _lastUpdated)",
    responses=RESPONSES,
)
async def search_devices(
    request: Request,
    *,
    engine: EngineDep,
    scope: ScopeDep,
    wire: WireDep,
    paging: PagingDep,
    ingestor: IngestorDep,
    zone: ZoneDep,
    clock: ClockDep,
    identifier: Annotated[str | None, Query(description="system|value, |value or value")] = None,
    udi_di: Annotated[str | None, Query(alias="udi-di", description="UDI device identifier (GTIN)")] = None,
    status: Annotated[str | None, Query(description="active | inactive")] = None,
    location: Annotated[str | None, Query(description="Location/<id>, or a department code or name")] = None,
    type_: Annotated[
        str | None, Query(alias="type", description="Category code, system|code, or name")
    ] = None,
    last_updated: LastUpdated = None,
) -> Response:
    if status not in (None, *devices.STATUSES):
        raise invalid("status", f"status={status!r}: active or inactive")
    value, di = (
        devices.identifier_query(identifier, ingestor.identifier_systems()) if identifier else (None, None)
    )
    if di and udi_di and di != udi_di:  # two different device identifiers: nothing matches
        return search_answer(request, wire, [], total=0, paging=paging)
    updated = updated_range(last_updated or [], zone)
    category = type_.rpartition("|")[2] if type_ else None
    today = clock.now().astimezone(zone).date()

    def find() -> tuple[list[dict[str, Any]], int]:
        with engine.connect() as conn:
            department, place, reachable = _department(scope, location, conn)
            if not reachable:
                return [], 0
            rows, total = list_assets(
                conn,
                department=department,
                category=category or None,
                identifier=value or None,
                active=None if status is None else status == "active",
                udi_di=udi_di or di or None,
                updated=updated,
                place=place,
                limit=paging.count,
                offset=paging.offset,
            )
            ready = availability_of(conn, [r["asset_id"] for r in rows], today)
            return [devices.device(r, ready.get(r["asset_id"])) for r in rows], total

    found, total = await run_in_threadpool(find)
    return search_answer(request, wire, found, total=total, paging=paging, r4b=devices.r4b)
