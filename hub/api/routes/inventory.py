"""/inventory: stock, alerts, distribution, expiring lots, item master, trace by code, recall by lot.

"Today" for the expiring list is the hub's clock's date (UTC), unless `as_of` is given.

Trace and recall answer with patient tokens: each is recorded on the audit ledger (actions
`inventory.trace`, `inventory.recall`) before anything is read, and without an access log
they answer 503.

Department scope: what "a department's" inventory is, for a key created with `--department D`
(D a code or a name; anything else gives an empty page, or the 404 of an unknown code):
- stock, alerts, expiring: rows at places of D;
- distribution: D's row only;
- items: the item master is a catalogue, not a department's holdings: listed in full; an
  item's detail lists only D's places (and their total);
- trace: steps at D's places (a transfer also when it left from D); a unit or lot only when
  something of it happened at D, and a unit that went on elsewhere without where it is now nor
  what became of it there (patient token included); 404 when nothing is left;
- recall: D's stock of the lot and what D used or disposed of, with totals over those.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, HTTPException, Path, Query
from fastapi import status as http
from starlette.concurrency import run_in_threadpool

from hub.api.deps import ClockDep, ConnDep, EngineDep, get_clock
from hub.api.params import WINDOW_PATTERN, IsoDate, Offset, window_days
from hub.api.routes.inventory_models import (
    AlertOut,
    AlertPage,
    DistributionOut,
    DistributionPage,
    ExpiringOut,
    ExpiringPage,
    ItemDetailOut,
    ItemOut,
    ItemPage,
    RecallOut,
    StockOut,
    StockPage,
    TraceOut,
)
from hub.api.scope import ScopeDep  # noqa: TC001
from hub.api.security import AuditDep  # noqa: TC001
from projections.inventory.alerts import list_alerts
from projections.inventory.queries import (
    distribution,
    expiring,
    get_item,
    list_items,
    list_stock,
    recall_in_department,
    trace_in_department,
)
from projections.inventory.trace import recall, trace

if TYPE_CHECKING:
    from sqlalchemy import Engine

__all__ = ["ClockDep", "get_clock", "router"]

router = APIRouter(prefix="/inventory", tags=["inventory"])

MAX_PAGE = 500
UNPROCESSABLE = 422  # Starlette renamed its constant (…_ENTITY -> …_CONTENT); the code is what counts

Limit = Annotated[int, Query(ge=1, le=MAX_PAGE)]
ItemQ = Annotated[str | None, Query(description="Hub item id or the source's item code")]
DepartmentQ = Annotated[str | None, Query(description="Department code or name, exact")]


@router.get("/stock", response_model=StockPage)
def read_stock(
    conn: ConnDep,
    scope: ScopeDep,
    *,
    item: ItemQ = None,
    department: DepartmentQ = None,
    location: Annotated[str | None, Query(description="Place text within the department, exact")] = None,
    lot: Annotated[str | None, Query(description="Lot number, exact")] = None,
    high_value: Annotated[bool | None, Query(description="Only high-value (or only ordinary) items")] = None,
    below_minimum: Annotated[
        bool | None, Query(description="Only places below (or not below) the item's minimum")
    ] = None,
    include_empty: Annotated[
        bool, Query(description="Also list rows with nothing (or less than nothing) on hand")
    ] = False,
    limit: Limit = 50,
    offset: Offset = 0,
) -> StockPage:
    """Stock by item × place × lot, in key order; rows with stock on hand unless include_empty."""
    department, reachable = scope.department_filter(department)
    if not reachable:
        return StockPage(items=[], total=0, limit=limit, offset=offset)
    rows, total = list_stock(
        conn,
        item=item,
        department=department,
        location=location,
        lot=lot,
        high_value=high_value,
        below_minimum=below_minimum,
        include_empty=include_empty,
        limit=limit,
        offset=offset,
    )
    return StockPage(
        items=[StockOut.model_validate(r) for r in rows], total=total, limit=limit, offset=offset
    )


@router.get("/alerts", response_model=AlertPage)
def read_alerts(
    conn: ConnDep,
    scope: ScopeDep,
    *,
    item: ItemQ = None,
    department: DepartmentQ = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> AlertPage:
    """Items below their minimum at a place now, with the quantity that refills to the maximum."""
    department, reachable = scope.department_filter(department)
    if not reachable:
        return AlertPage(items=[], total=0, limit=limit, offset=offset)
    rows, total = list_alerts(conn, department=department, item=item, limit=limit, offset=offset)
    return AlertPage(
        items=[AlertOut.model_validate(r) for r in rows], total=total, limit=limit, offset=offset
    )


@router.get("/distribution", response_model=DistributionPage)
def read_distribution(
    conn: ConnDep,
    scope: ScopeDep,
    *,
    item: Annotated[str, Query(description="Hub item id or the source's item code")],
    limit: Limit = 50,
    offset: Offset = 0,
) -> DistributionPage:
    """How much of one item each department holds, most first."""
    rows = distribution(conn, item, department=scope.department)
    page = [DistributionOut.model_validate(r) for r in rows[offset : offset + limit]]
    return DistributionPage(items=page, total=len(rows), limit=limit, offset=offset)


@router.get(
    "/expiring",
    response_model=ExpiringPage,
    responses={UNPROCESSABLE: {"description": "within is not a number of days"}},
)
def read_expiring(
    conn: ConnDep,
    clock: ClockDep,
    scope: ScopeDep,
    *,
    within: Annotated[
        str,
        Query(
            json_schema_extra={"pattern": WINDOW_PATTERN},
            description="Window from as_of: 30d, 2w or a number of days",
        ),
    ] = "30d",
    as_of: Annotated[IsoDate | None, Query(description="Reference date (default: today)")] = None,
    item: ItemQ = None,
    department: DepartmentQ = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> ExpiringPage:
    """Stock on hand in lots expiring by as_of + within (already expired ones first), soonest first."""
    try:
        days = window_days(within)
    except ValueError as exc:
        raise HTTPException(UNPROCESSABLE, detail=str(exc)) from None
    department, reachable = scope.department_filter(department)
    if not reachable:
        return ExpiringPage(items=[], total=0, limit=limit, offset=offset)
    rows, total = expiring(
        conn,
        as_of=as_of or clock.now().date(),
        within_days=days,
        department=department,
        item=item,
        limit=limit,
        offset=offset,
    )
    return ExpiringPage(
        items=[ExpiringOut.model_validate(r) for r in rows], total=total, limit=limit, offset=offset
    )


@router.get("/items", response_model=ItemPage)
def read_items(
    conn: ConnDep,
    *,
    q: Annotated[str | None, Query(description="Substring of the item name or code")] = None,
    category: Annotated[str | None, Query(description="Category, exact")] = None,
    high_value: Annotated[bool | None, Query()] = None,
    gtin: Annotated[str | None, Query(description="GTIN or UDI-DI (any GTIN length)")] = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> ItemPage:
    """The item master, by item id."""
    rows, total = list_items(
        conn, q=q, category=category, high_value=high_value, gtin=gtin, limit=limit, offset=offset
    )
    return ItemPage(items=[ItemOut.model_validate(r) for r in rows], total=total, limit=limit, offset=offset)


@router.get(
    "/items/{item_id}",
    response_model=ItemDetailOut,
    responses={http.HTTP_404_NOT_FOUND: {"description": "No item with this id in the master"}},
)
def read_item(conn: ConnDep, scope: ScopeDep, item_id: Annotated[str, Path(max_length=64)]) -> ItemDetailOut:
    """One item with its stock and thresholds per place."""
    row = get_item(conn, item_id, department=scope.department)
    if row is None:
        raise HTTPException(http.HTTP_404_NOT_FOUND, detail=f"no item with id {item_id!r}")
    return ItemDetailOut.model_validate(row)


@router.get(
    "/trace/{code:path}",
    response_model=TraceOut,
    responses={http.HTTP_404_NOT_FOUND: {"description": "No unit or lot matches the code"}},
)
async def read_trace(
    engine: EngineDep,
    scope: ScopeDep,
    audit: AuditDep,
    code: Annotated[str, Path(min_length=1, max_length=512)],
) -> TraceOut:
    """One item, one code: a UDI, serial, GS1 string or Digital Link -> each unit's (or lot's) path."""
    await audit.record("inventory.trace", code)
    found = await run_in_threadpool(_trace, engine, code, scope.department)
    if found is None:
        raise HTTPException(http.HTTP_404_NOT_FOUND, detail="no unit or lot matches this code")
    return TraceOut.model_validate(found)


def _trace(engine: Engine, code: str, department: str | None) -> dict[str, Any] | None:
    with engine.connect() as conn:
        found = trace(conn, code)
    if found is None or department is None:
        return found
    return trace_in_department(found, department)


@router.get("/recall", response_model=RecallOut)
async def read_recall(
    engine: EngineDep,
    scope: ScopeDep,
    audit: AuditDep,
    *,
    lot: Annotated[str, Query(min_length=1, description="The recalled lot")],
    gtin: Annotated[str | None, Query(description="Narrow to the items with this GTIN / UDI-DI")] = None,
    item: ItemQ = None,
) -> RecallOut:
    """A lot's units still on hand (where) and already used (when, where, patient tokens) or disposed."""
    asked = {"lot": lot, "gtin": gtin, "item": item}
    await audit.record("inventory.recall", urlencode({k: v for k, v in asked.items() if v is not None}))
    found = await run_in_threadpool(_recall, engine, scope.department, lot=lot, gtin=gtin, item=item)
    return RecallOut.model_validate(found)


def _recall(
    engine: Engine, department: str | None, *, lot: str, gtin: str | None, item: str | None
) -> dict[str, Any]:
    with engine.connect() as conn:
        found = recall(conn, lot=lot, gtin=gtin, item=item)
    return found if department is None else recall_in_department(found, department)
