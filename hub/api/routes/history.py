"""`GET /history/{kind}/{id}`: every event about an asset, item, work order or UDI code, from the log.

Each event comes with its source system, source message id and raw reference (resolve the bytes
with `GET /raw/{ref}`), oldest first by business time. Read from the event log itself, so it
works for any subject the log names, whichever read model it belongs to.

Needs the history permission (integrator, auditor, admin), and every read is recorded on the
audit ledger. A department-scoped key sees the history of its department's assets and work
orders (as the read models place them now); item and UDI histories cross departments, so a
scoped key gets 404 for them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi import status as http
from sqlalchemy import select

from hub.api.deps import StateDep  # noqa: TC001  (FastAPI reads the annotation at runtime)
from hub.api.security import AuditDep  # noqa: TC001
from hub.auth.roles import Principal  # noqa: TC001  (kept at runtime with the other route imports)
from projections.asset_queries import get_asset
from projections.work_orders_tables import orders
from replay.history import HistoryEntry, SubjectKind

router = APIRouter(prefix="/history", tags=["replay"])

HistoryReader = Callable[[SubjectKind, str, datetime | None, bool], Awaitable[list[HistoryEntry]]]


def _in_scope(state: StateDep, principal: Principal, kind: SubjectKind, subject_id: str) -> bool:
    if principal.department is None:
        return True
    with state.engine.connect() as conn:
        if kind is SubjectKind.ASSET:
            row = get_asset(conn, subject_id)
            return row is not None and principal.sees(row.get("department_code"), row.get("department_name"))
        if kind is SubjectKind.WORKORDER:
            found = conn.execute(
                select(orders.c.department_code, orders.c.department_name).where(
                    orders.c.workorder_id == subject_id
                )
            ).first()
            return found is not None and principal.sees(found.department_code, found.department_name)
    return False


@router.get("/{kind}/{subject_id}", summary="A subject's history with provenance")
async def read_history(
    request: Request,
    state: StateDep,
    audit: AuditDep,
    kind: SubjectKind,
    subject_id: str,
    *,
    since: Annotated[datetime | None, Query(description="Only events recorded from then on")] = None,
    derived: Annotated[bool, Query(description="Include derived events (alerts, SLA breaches)")] = False,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> dict[str, Any]:
    reader: HistoryReader | None = getattr(request.app.state, "history_reader", None)
    if reader is None:
        raise HTTPException(
            http.HTTP_503_SERVICE_UNAVAILABLE, "history needs the event log (run `hub serve`)"
        )
    not_found = HTTPException(
        http.HTTP_404_NOT_FOUND, f"no events about {kind.value} {subject_id!r} on the log"
    )
    if not await asyncio.to_thread(_in_scope, state, audit.principal, kind, subject_id):
        raise not_found
    await audit.record("history.read", f"{kind.value}/{subject_id}")
    entries = await reader(kind, subject_id, since, derived)
    if not entries:
        raise not_found
    return {
        "items": [e.as_json() for e in entries[offset : offset + limit]],
        "total": len(entries),
        "limit": limit,
        "offset": offset,
    }
