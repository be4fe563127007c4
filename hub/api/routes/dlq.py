"""`/dlq`: dead letters for the integrators who fix mappings, and their retry.

- `GET /dlq`: each failed unit with its raw reference, where (file, line, column / segment,
  field) and why; paged, `total` over all pages; `code=` keeps one failure code. The excerpt of
  the failing row is left out, as on the dlq topics: it may hold patient data; an auditor can
  read the raw message itself. `kind=note` lists the notes instead: units applied with a field
  left unknown (a department code the mapping does not know), which a retry after the fix corrects.
- `GET /dlq/groups`: the same selection grouped by (system, code), with the mapping each system
  translates with now (what a retry would use) beside the mappings the letters failed under.
- `POST /dlq/retry`: the current mapping over every raw message with open dead letters (or one,
  `raw_ref=`): units that now translate are published, and their dead letters resolved.
- `POST /dlq/retry/matching`: the same for the messages named (`raw_refs`, the console's
  "selected") or for every message with open dead letters matching `system` and `code`
  ("all matching").

Needs the dlq permission (integrator, admin). A department-scoped key lists and retries only
the dead letters of raw messages that are its department's alone (hub.api.scope); a dead letter
whose message the hub cannot place is hidden from it, and a raw_ref outside its scope is 404.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Query
from fastapi import status as http
from pydantic import BaseModel, ConfigDict, Field

from hub.api.deps import DeadLettersDep  # noqa: TC001  (FastAPI reads the annotations at runtime)
from hub.api.params import Offset  # noqa: TC001
from hub.api.scope import ScopeDep  # noqa: TC001
from schemas.records import DeadLetterRecord

router = APIRouter(prefix="/dlq", tags=["dead letters"])
MAX_PAGE = 1000
MAX_SELECTED = 1000
_NOT_FOUND: dict[int | str, dict[str, Any]] = {
    http.HTTP_404_NOT_FOUND: {"description": "No such raw message (in the key's scope)"}
}


class DeadLetterItem(DeadLetterRecord):
    """A dead letter as published on dlq.<system>.v1, with its state at the hub."""

    status: Literal["open", "resolved"]
    attempts: int = Field(description="Times it failed (a retry under a new mapping counts anew)")


class DeadLetterPage(BaseModel):
    model_config = ConfigDict(frozen=True)

    items: list[DeadLetterItem]
    total: int = Field(description="Over all pages (the key's scope applied)")
    limit: int
    offset: int


class ReasonGroupOut(BaseModel):
    model_config = ConfigDict(frozen=True)

    system: str
    code: str
    count: int = Field(description="Dead letters in the group")
    raw_refs: int = Field(description="Distinct raw messages: what retrying the group translates again")
    reason: str = Field(description="The first letter's reason, as an example")
    mapping_versions: list[str] = Field(description="Mapping versions they failed under")


class MappingOut(BaseModel):
    model_config = ConfigDict(frozen=True)

    system: str
    version: str = Field(description="Content hash of the mapping a retry uses now")
    overridden: bool = Field(description="The hospital's file in HUB_MAPPING_DIR, not the bundled default")
    file: str


class GroupsOut(BaseModel):
    model_config = ConfigDict(frozen=True)

    groups: list[ReasonGroupOut]
    total: int = Field(description="Dead letters over all groups")
    mappings: list[MappingOut] = Field(description="The mapping in use per source system")


class RetryOut(BaseModel):
    model_config = ConfigDict(frozen=True)

    retried: int = Field(description="Raw messages translated again")
    resolved: int = Field(description="Dead letters that no longer fail")
    still_open: int


class RetryMatchingIn(BaseModel):
    """The messages named (`raw_refs`), or every one with open dead letters matching the filters."""

    model_config = ConfigDict(extra="forbid")
    raw_refs: list[Annotated[str, Field(max_length=200)]] | None = Field(
        default=None, max_length=MAX_SELECTED, description="Retry these messages (the console's selection)"
    )
    system: str | None = Field(default=None, max_length=64)
    code: str | None = Field(default=None, max_length=200, description="Only dead letters with this code")


class RetryMatchingOut(RetryOut):
    matched: int = Field(description="Raw messages the request named or matched (in the key's scope)")


SystemQ = Annotated[str | None, Query(max_length=64, description="Only this source system")]
StatusQ = Annotated[Literal["open", "resolved", "all"], Query()]


@router.get("", response_model=DeadLetterPage, summary="Dead letters: what failed, where and why")
async def list_dead_letters(
    letters: DeadLettersDep,
    scope: ScopeDep,
    *,
    system: SystemQ = None,
    code: Annotated[str | None, Query(max_length=200, description="Only this failure code")] = None,
    status: StatusQ = "open",
    kind: Annotated[
        Literal["failure", "note"],
        Query(
            description="`failure` (default): units not applied. `note`: units applied with a field left "
            "unknown (e.g. a department code the mapping does not know); a retry after the fix corrects them"
        ),
    ] = "failure",
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 200,
    offset: Offset = 0,
) -> DeadLetterPage:
    found, total = await letters.page(
        status=None if status == "all" else status,
        system=system,
        code=code,
        kind=kind,
        limit=limit,
        offset=offset,
        visible=scope.raw_refs if scope.scoped else None,
    )
    return DeadLetterPage(
        items=[DeadLetterItem(**d.as_record(), status=d.status, attempts=d.attempts) for d in found],
        total=total,
        limit=limit,
        offset=offset,
    )


@router.get(
    "/groups", response_model=GroupsOut, summary="Dead letters grouped by reason, and the mappings in use"
)
async def group_dead_letters(
    letters: DeadLettersDep, scope: ScopeDep, *, system: SystemQ = None, status: StatusQ = "open"
) -> GroupsOut:
    groups = await letters.groups(
        status=None if status == "all" else status,
        system=system,
        visible=scope.raw_refs if scope.scoped else None,
    )
    return GroupsOut(
        groups=[
            ReasonGroupOut(
                system=g.system,
                code=g.code,
                count=g.count,
                raw_refs=g.raw_refs,
                reason=g.reason,
                mapping_versions=list(g.mapping_versions),
            )
            for g in groups
        ],
        total=sum(g.count for g in groups),
        mappings=[
            MappingOut(system=m.system, version=m.version, overridden=m.overridden, file=m.file)
            for m in letters.mappings()
        ],
    )


@router.post(
    "/retry",
    response_model=RetryOut,
    summary="Translate dead-lettered messages again with the current mapping",
    responses=_NOT_FOUND,
)
async def retry_dead_letters(
    letters: DeadLettersDep,
    scope: ScopeDep,
    *,
    system: SystemQ = None,
    raw_ref: Annotated[str | None, Query(max_length=200, description="Only this raw message")] = None,
) -> RetryOut:
    if raw_ref is not None and not (await scope.sees_raw(raw_ref) and await letters.known(raw_ref)):
        raise HTTPException(http.HTTP_404_NOT_FOUND, f"no raw message {raw_ref!r}")
    outcome = await letters.retry(
        system=system, raw_ref=raw_ref, visible=scope.raw_refs if scope.scoped else None
    )
    return RetryOut(retried=outcome.retried, resolved=outcome.resolved, still_open=outcome.still_open)


@router.post(
    "/retry/matching",
    response_model=RetryMatchingOut,
    summary="Retry the selected messages, or every message whose open dead letters match the filters",
    responses=_NOT_FOUND,
)
async def retry_matching(body: RetryMatchingIn, letters: DeadLettersDep, scope: ScopeDep) -> RetryMatchingOut:
    if body.raw_refs is not None:
        refs = list(dict.fromkeys(body.raw_refs))
        for ref in refs:
            if not (await scope.sees_raw(ref) and await letters.known(ref)):
                raise HTTPException(http.HTTP_404_NOT_FOUND, f"no raw message {ref!r}")
    else:
        matched = await letters.matching(
            status="open",
            system=body.system,
            code=body.code,
            visible=scope.raw_refs if scope.scoped else None,
        )
        refs = list(dict.fromkeys(d.raw_ref for d in matched))
    outcome = await letters.reprocess(refs)
    return RetryMatchingOut(
        matched=len(refs), retried=outcome.retried, resolved=outcome.resolved, still_open=outcome.still_open
    )
