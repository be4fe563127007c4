"""`GET /dlq` and `POST /dlq/retry`: dead letters for the integrators who fix mappings.

The list is what `hub dlq list` shows: each failed unit with its raw reference, where (file,
line, column / segment, field) and why. The excerpt of the failing row is left out, as on the
dlq topics: it may hold patient data; an auditor can read the raw message itself. Retry runs
the current mapping over every raw message with open dead letters (or one, `raw_ref=`): units
that now translate are published, and their dead letters resolved; the rest stay open.

Needs the dlq permission (integrator, admin). A department-scoped key lists and retries only
the dead letters of raw messages that are its department's alone (hub.api.scope); a dead letter
whose message the hub cannot place is hidden from it, and `raw_ref=` outside its scope is 404.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Query
from fastapi import status as http

from hub.api.deps import DeadLettersDep  # noqa: TC001  (FastAPI reads the annotations at runtime)
from hub.api.params import Offset  # noqa: TC001
from hub.api.scope import ScopeDep  # noqa: TC001

router = APIRouter(prefix="/dlq", tags=["dead letters"])
MAX_PAGE = 1000


@router.get("", summary="Dead letters: what failed, where and why")
async def list_dead_letters(
    letters: DeadLettersDep,
    scope: ScopeDep,
    *,
    system: Annotated[str | None, Query(description="Only this source system")] = None,
    status: Annotated[Literal["open", "resolved", "all"], Query()] = "open",
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 200,
    offset: Offset = 0,
) -> dict[str, Any]:
    found, total = await letters.page(
        status=None if status == "all" else status,
        system=system,
        limit=limit,
        offset=offset,
        visible=scope.raw_refs if scope.scoped else None,
    )
    return {
        "items": [{**d.as_record(), "status": d.status, "attempts": d.attempts} for d in found],
        "total": total,  # over all pages (the key's scope applied)
        "limit": limit,
        "offset": offset,
    }


@router.post("/retry", summary="Translate dead-lettered messages again with the current mapping")
async def retry_dead_letters(
    letters: DeadLettersDep,
    scope: ScopeDep,
    *,
    system: Annotated[str | None, Query(description="Only this source system")] = None,
    raw_ref: Annotated[str | None, Query(description="Only this raw message")] = None,
) -> dict[str, int]:
    if raw_ref is not None and not (await scope.sees_raw(raw_ref) and await letters.known(raw_ref)):
        raise HTTPException(http.HTTP_404_NOT_FOUND, f"no raw message {raw_ref!r}")
    outcome = await letters.retry(
        system=system, raw_ref=raw_ref, visible=scope.raw_refs if scope.scoped else None
    )
    return {"retried": outcome.retried, "resolved": outcome.resolved, "still_open": outcome.still_open}
