"""FHIR Task from work orders: `GET /fhir/Task/{id}`, `GET /fhir/Task?status=&focus=&business-status=`.

A scoped key sees the work orders its department reported or that are on its devices (the same
rule as /workorders); any other is 404.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response  # noqa: TC002  (FastAPI reads the return annotation)

from hub.api.deps import ClockDep, EngineDep  # noqa: TC001  (FastAPI reads the annotations at runtime)
from hub.api.fhir.answer import RESPONSES, search_answer
from hub.api.fhir.bundle import PagingDep, invalid, not_found
from hub.api.fhir.task import HUB_STATES, STATUS, task, task_id
from hub.api.fhir.wire import WireDep, read
from hub.api.scope import ScopeDep  # noqa: TC001
from projections.work_orders.queries import WorkOrderFilter, list_work_orders
from projections.work_orders.tables import orders

router = APIRouter(prefix="/fhir", tags=["fhir"])


@router.get("/Task/{task_ref}", summary="One work order as a Task", responses=RESPONSES)
async def read_task(
    task_ref: str, request: Request, engine: EngineDep, scope: ScopeDep, wire: WireDep
) -> Response:
    def load() -> dict[str, Any] | None:
        with engine.connect() as conn:
            row = scope.work_order(conn, task_ref)
            if row is None and task_ref.startswith("wo-"):
                # An id that is not a FHIR id is served under its digest: find it back.
                ids = conn.execute(orders.select().with_only_columns(orders.c.workorder_id)).scalars()
                match = next((i for i in ids if task_id(i) == task_ref), None)
                row = scope.work_order(conn, match) if match else None
            return row

    row = await run_in_threadpool(load)
    if row is None:
        raise not_found(f"Task/{task_ref}")
    return read(request, wire, task(row), row.get("status_at"))


@router.get("/Task", summary="Search work orders (status, focus, business-status)", responses=RESPONSES)
async def search_tasks(
    request: Request,
    *,
    engine: EngineDep,
    scope: ScopeDep,
    wire: WireDep,
    paging: PagingDep,
    clock: ClockDep,
    status: Annotated[str | None, Query(description="FHIR Task status")] = None,
    focus: Annotated[str | None, Query(description="Device/<id>")] = None,
    business_status: Annotated[
        str | None, Query(alias="business-status", description="The hub's state")
    ] = None,
) -> Response:
    if status is not None and status not in HUB_STATES:
        raise invalid("status", f"status={status!r}: one of {', '.join(sorted(HUB_STATES))}")
    if business_status is not None and business_status not in STATUS:
        raise invalid("business-status", f"business-status={business_status!r}: one of {', '.join(STATUS)}")
    where = WorkOrderFilter(
        status=business_status,
        statuses=HUB_STATES[status] if status else None,
        asset=focus.removeprefix("Device/") if focus else None,
        scope=scope.department,
    )

    def find() -> tuple[list[dict[str, Any]], int]:
        with engine.connect() as conn:
            return list_work_orders(conn, where, now=clock.now(), limit=paging.count, offset=paging.offset)

    rows, total = await run_in_threadpool(find)
    return search_answer(request, wire, [task(r) for r in rows], total=total, paging=paging)
