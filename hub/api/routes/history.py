"""`GET /history/{kind}/{id}`: every event about an asset, item, work order or UDI code, from the log.

Each event comes with its source system, source message id and raw reference (resolve the bytes
with `GET /raw/{ref}`), oldest first by business time. Read from the event log itself, so it
works for any subject the log names, whichever read model it belongs to.

Needs the history permission (integrator, auditor, admin), and every read is recorded on the
audit ledger. A department-scoped key sees the history of its department's assets and work
orders (as the read models place them now: hub.api.scope); item and UDI histories cross
departments, so a scoped key gets 404 for them.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, HTTPException, Query
from fastapi import status as http

from hub.api.deps import EngineDep, HistoryDep  # noqa: TC001  (FastAPI reads the annotations at runtime)
from hub.api.params import IsoDateTime, Offset  # noqa: TC001  (FastAPI reads the annotations at runtime)
from hub.api.scope import Scope, ScopeDep  # noqa: TC001
from hub.api.security import AuditDep  # noqa: TC001
from hub.api.services import HistoryReader
from replay.history import SubjectKind

if TYPE_CHECKING:
    from sqlalchemy import Engine

__all__ = ["HistoryReader", "router"]

router = APIRouter(prefix="/history", tags=["replay"])


def _in_scope(engine: Engine, scope: Scope, kind: SubjectKind, subject_id: str) -> bool:
    if not scope.scoped:
        return True
    with engine.connect() as conn:
        if kind is SubjectKind.ASSET:
            return scope.asset(conn, subject_id) is not None
        if kind is SubjectKind.WORKORDER:
            return scope.work_order(conn, subject_id) is not None
    return False  # items and UDI codes cross departments


@router.get("/{kind}/{subject_id}", summary="A subject's history with provenance")
async def read_history(
    *,
    engine: EngineDep,
    reader: HistoryDep,
    scope: ScopeDep,
    audit: AuditDep,
    kind: SubjectKind,
    subject_id: str,
    since: Annotated[IsoDateTime | None, Query(description="Only events recorded from then on")] = None,
    derived: Annotated[bool, Query(description="Include derived events (alerts, SLA breaches)")] = False,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
    offset: Offset = 0,
) -> dict[str, Any]:
    not_found = HTTPException(
        http.HTTP_404_NOT_FOUND, f"no events about {kind.value} {subject_id!r} on the log"
    )
    if not await asyncio.to_thread(_in_scope, engine, scope, kind, subject_id):
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
