"""`GET /history/{kind}/{id}`: every event about an asset, item, work order or UDI code, from the log.

Each event comes with its source system, source message id and raw reference (resolve the bytes
with `GET /raw/{ref}`), oldest first by business time. Read from the event log itself, so it
works for any subject the log names, whichever read model it belongs to.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi import status as http

from replay.history import HistoryEntry, SubjectKind

router = APIRouter(prefix="/history", tags=["replay"])

HistoryReader = Callable[[SubjectKind, str, datetime | None, bool], Awaitable[list[HistoryEntry]]]


@router.get("/{kind}/{subject_id}", summary="A subject's history with provenance")
async def read_history(
    request: Request,
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
    entries = await reader(kind, subject_id, since, derived)
    if not entries:
        raise HTTPException(
            http.HTTP_404_NOT_FOUND, f"no events about {kind.value} {subject_id!r} on the log"
        )
    return {
        "items": [e.as_json() for e in entries[offset : offset + limit]],
        "total": len(entries),
        "limit": limit,
        "offset": offset,
    }
