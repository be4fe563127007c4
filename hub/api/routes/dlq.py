"""`GET /dlq` and `POST /dlq/retry`: dead letters for the integrators who fix mappings.

The list is what `hub dlq list` shows: each failed unit with its raw reference, where (file,
line, column / segment, field) and why. The excerpt of the failing row is left out, as on the
dlq topics: it may hold patient data; an auditor can read the raw message itself. Retry runs
the current mapping over every raw message with open dead letters (or one, `raw_ref=`): units
that now translate are published, and their dead letters resolved; the rest stay open.

Needs the dlq permission (integrator, admin).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, Protocol

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi import status as http

from hub.deadletters import DeadLetter  # noqa: TC001  (part of a runtime-checked protocol's signature)
from hub.dlq_retry import RetryOutcome  # noqa: TC001

router = APIRouter(prefix="/dlq", tags=["dead letters"])
MAX_PAGE = 1000


class DeadLetterAccess(Protocol):
    async def query(self, *, status: str | None, system: str | None, limit: int) -> list[DeadLetter]: ...

    async def retry(self, *, system: str | None, raw_ref: str | None) -> RetryOutcome: ...


def _access(request: Request) -> DeadLetterAccess:
    access: DeadLetterAccess | None = getattr(request.app.state, "dead_letters", None)
    if access is None:
        raise HTTPException(http.HTTP_503_SERVICE_UNAVAILABLE, "dead letters need `hub serve` (the archive)")
    return access


@router.get("", summary="Dead letters: what failed, where and why")
async def list_dead_letters(
    request: Request,
    *,
    system: Annotated[str | None, Query(description="Only this source system")] = None,
    status: Annotated[Literal["open", "resolved", "all"], Query()] = "open",
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 200,
) -> dict[str, Any]:
    letters = await _access(request).query(
        status=None if status == "all" else status, system=system, limit=limit
    )
    return {
        "items": [{**d.as_record(), "status": d.status, "attempts": d.attempts} for d in letters],
        "total": len(letters),
        "limit": limit,
    }


@router.post("/retry", summary="Translate dead-lettered messages again with the current mapping")
async def retry_dead_letters(
    request: Request,
    *,
    system: Annotated[str | None, Query(description="Only this source system")] = None,
    raw_ref: Annotated[str | None, Query(description="Only this raw message")] = None,
) -> dict[str, int]:
    outcome = await _access(request).retry(system=system, raw_ref=raw_ref)
    return {"retried": outcome.retried, "resolved": outcome.resolved, "still_open": outcome.still_open}
