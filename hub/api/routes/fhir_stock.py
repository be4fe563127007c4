"""FHIR over the inventory: InventoryItem and InventoryReport (R5 only), SupplyDelivery history.

- `GET /fhir/InventoryItem/{id}`, `GET /fhir/InventoryItem?code=&identifier=&name=`: the item master;
- `GET /fhir/InventoryReport/{department id}`, `GET /fhir/InventoryReport?location=`: stock on
  hand per department (a scoped key: its own department only);
- `GET /fhir/SupplyDelivery?lot=[&item=]` or `?serial=`: the receipts and transfers of a lot or a
  unit, audited like `/inventory/trace` (what a department may see of it, for a scoped key);
  `GET /fhir/SupplyDelivery/{event id}` one of them (a scoped key: to or from its department).
An R4B request for InventoryItem or InventoryReport is 406 (they are new in R5).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response  # noqa: TC002  (FastAPI reads the return annotation)

from hub.api.deps import ClockDep, EngineDep  # noqa: TC001  (FastAPI reads the annotations at runtime)
from hub.api.fhir import supply as fhir_supply
from hub.api.fhir.answer import RESPONSES, in_release, search_answer
from hub.api.fhir.bundle import PagingDep, invalid, not_found
from hub.api.fhir.places import Place
from hub.api.fhir.stock import inventory_item, inventory_report
from hub.api.fhir.wire import WireDep, read
from hub.api.scope import Scope, ScopeDep  # noqa: TC001
from hub.api.security import AuditDep  # noqa: TC001
from projections.inventory.queries import get_item, list_items, list_places, list_stock, trace_in_department
from projections.inventory.trace import delivery, lot_paths, trace

router = APIRouter(prefix="/fhir", tags=["fhir"])
MAX_REPORT_LINES = 10_000


@router.get("/InventoryItem/{item_id}", summary="One item of the inventory master (R5)", responses=RESPONSES)
async def read_inventory_item(
    item_id: str, request: Request, engine: EngineDep, scope: ScopeDep, wire: WireDep
) -> Response:
    wire.require("InventoryItem")

    def load() -> dict[str, Any] | None:
        with engine.connect() as conn:
            return get_item(conn, item_id, department=scope.department)

    row = await run_in_threadpool(load)
    if row is None:
        raise not_found(f"InventoryItem/{item_id}")
    return read(request, wire, inventory_item(row), row.get("defined_at"))


@router.get(
    "/InventoryItem", summary="Search the inventory master (code, identifier, name) (R5)", responses=RESPONSES
)
async def search_inventory_items(
    request: Request,
    *,
    engine: EngineDep,
    scope: ScopeDep,
    wire: WireDep,
    paging: PagingDep,
    code: Annotated[str | None, Query(description="Item code or hub item id (system|code too)")] = None,
    identifier: Annotated[
        str | None, Query(description="Item id, code, GTIN or UDI-DI (system|value too)")
    ] = None,
    name: Annotated[str | None, Query(description="Part of the name or code")] = None,
) -> Response:
    del scope  # the item master is hospital-wide: every key that may read sees it
    wire.require("InventoryItem")
    wanted = identifier.rpartition("|")[2] if identifier else None

    item_code = code.rpartition("|")[2] if code else None
    q = name or None

    def find() -> tuple[list[dict[str, Any]], int]:
        size, skip = paging.count, paging.offset
        with engine.connect() as conn:
            if not wanted:
                return list_items(conn, q=q, code=item_code, limit=size, offset=skip)
            rows, total = list_items(conn, q=q, code=wanted, limit=size, offset=skip)
            return (rows, total) if total else list_items(conn, q=q, gtin=wanted, limit=size, offset=skip)

    rows, total = await run_in_threadpool(find)
    return search_answer(request, wire, [inventory_item(r) for r in rows], total=total, paging=paging)


def _stock_departments(engine: EngineDep, scope: Scope) -> list[Place]:
    with engine.connect() as conn:
        rows = list_places(conn)
    found = {
        Place(r["department_code"], r["department_name"]).id: Place(
            r["department_code"], r["department_name"]
        )
        for r in rows
        if scope.sees(r["department_code"], r["department_name"])
    }
    return [found[key] for key in sorted(found)]


def _report(engine: EngineDep, place: Place, clock: ClockDep) -> dict[str, Any]:
    with engine.connect() as conn:
        rows, _ = list_stock(conn, department=place.department_code, limit=MAX_REPORT_LINES)
    return inventory_report(place, rows, clock.now())


@router.get("/InventoryReport/{report_id}", summary="A department's stock on hand (R5)", responses=RESPONSES)
async def read_inventory_report(
    report_id: str, *, request: Request, engine: EngineDep, scope: ScopeDep, wire: WireDep, clock: ClockDep
) -> Response:
    wire.require("InventoryReport")
    found = [p for p in await run_in_threadpool(_stock_departments, engine, scope) if p.id == report_id]
    if not found:
        raise not_found(f"InventoryReport/{report_id}")
    return read(request, wire, await run_in_threadpool(_report, engine, found[0], clock))


@router.get("/InventoryReport", summary="Stock on hand per department (location) (R5)", responses=RESPONSES)
async def search_inventory_reports(
    request: Request,
    *,
    engine: EngineDep,
    scope: ScopeDep,
    wire: WireDep,
    paging: PagingDep,
    clock: ClockDep,
    location: Annotated[str | None, Query(description="Location/<department id>")] = None,
) -> Response:
    wire.require("InventoryReport")
    places = await run_in_threadpool(_stock_departments, engine, scope)
    if location:
        places = [p for p in places if p.id == location.removeprefix("Location/")]
    page = places[paging.offset : paging.offset + paging.count]
    reports = [await run_in_threadpool(_report, engine, p, clock) for p in page]
    return search_answer(request, wire, reports, total=len(places), paging=paging)


@router.get("/SupplyDelivery", summary="Deliveries of a lot or a serialised unit", responses=RESPONSES)
async def search_supply_deliveries(
    request: Request,
    *,
    engine: EngineDep,
    scope: ScopeDep,
    audit: AuditDep,
    wire: WireDep,
    paging: PagingDep,
    lot: Annotated[str | None, Query(description="Lot number")] = None,
    item: Annotated[str | None, Query(description="Hub item id or item code (with lot)")] = None,
    serial: Annotated[str | None, Query(description="Serial number, UDI or GS1 string of one unit")] = None,
) -> Response:
    if not (lot or serial):
        raise invalid("lot", "give lot= (and optionally item=) or serial=")
    code = serial or lot or ""
    await audit.record("fhir.supply_delivery", code)

    def find() -> list[dict[str, Any]]:
        with engine.connect() as conn:
            found = trace(conn, code) if serial else lot_paths(conn, code, item=item)
        if found is not None and scope.department is not None:
            found = trace_in_department(found, scope.department)
        return [] if found is None else list(fhir_supply.deliveries(found))

    resources = await run_in_threadpool(find)
    page = resources[paging.offset : paging.offset + paging.count]
    return search_answer(request, wire, page, total=len(resources), paging=paging, r4b=fhir_supply.r4b)


@router.get("/SupplyDelivery/{delivery_id}", summary="One receipt or transfer", responses=RESPONSES)
async def read_supply_delivery(
    delivery_id: str, *, request: Request, engine: EngineDep, scope: ScopeDep, audit: AuditDep, wire: WireDep
) -> Response:
    await audit.record("fhir.supply_delivery", delivery_id)

    def load() -> dict[str, Any] | None:
        with engine.connect() as conn:
            path = delivery(conn, delivery_id)
        if path is None:
            return None
        step = path["steps"][0]
        if not (
            scope.sees(step["department_code"], step["department_name"])
            or scope.sees(step["from_department_code"], step["from_department_name"])
        ):
            return None
        return fhir_supply.supply_delivery(path, step, None)

    found = await run_in_threadpool(load)
    if found is None:
        raise not_found(f"SupplyDelivery/{delivery_id}")
    return read(request, wire, in_release(wire, found, fhir_supply.r4b))
