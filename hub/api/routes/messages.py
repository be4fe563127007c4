"""`/messages`: the message browser over the raw archive's metadata, and reprocessing.

- `GET /messages`: archived messages, newest first, filtered by system, message type, status,
  arrival time, the source's control id (MSH-10, file name) or a text in the id or metadata;
  paged with a `total` over all pages. Never the payload (it is patient data): `/raw` serves it.
- `GET /messages/{raw_ref}`: one message's trail: metadata and status, the events it became
  (each with its audit-ledger position), the ACK it was answered, its dead letters.
- `GET /messages/{raw_ref}/text`: the payload decoded as the translator reads it, HL7 one segment
  a line (raw_payload: auditor, admin; recorded on the audit ledger like `GET /raw`).
- `POST /messages/reprocess`: translate one message, or every message a filter matches, again
  with the current mapping (the dead-letter retry machinery; events that landed before are
  recognised by their ids and not repeated).

Reading needs raw_meta (integrator, auditor, admin), like `HEAD /raw`; reprocessing needs dlq
(integrator, admin), like `POST /dlq/retry`. A department-scoped key sees and reprocesses only
the messages that are its department's alone (hub.api.scope); another's answers 404.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, tzinfo
from typing import TYPE_CHECKING, Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Path, Query
from fastapi import status as http
from pydantic import BaseModel, ConfigDict, Field

from adapters.errors import MalformedMessage
from hub.api.deps import RawReaderDep, ServicesDep, ZoneDep  # noqa: TC001  (FastAPI reads the annotations at runtime)
from hub.api.params import IsoDateTime, Offset  # noqa: TC001
from hub.api.routes.raw import gate_raw
from hub.api.scope import Scope, ScopeDep  # noqa: TC001
from hub.api.security import AuditDep  # noqa: TC001
from hub.auth.roles import Permission
from hub.ports import RawQuery

if TYPE_CHECKING:
    from hub.api.browser import MessageBrowser
    from hub.ports import RawRecord, RawSummary

router = APIRouter(prefix="/messages", tags=["messages"])
reprocess_router = APIRouter(prefix="/messages", tags=["messages"])

MAX_PAGE = 500
COUNT_LIMIT = 100_000  # the list's total is exact up to this many matches (counting 10 M costs)
MAX_REPROCESS = 10_000  # messages one call may translate again (a filter matching more: narrow it)
Status = Literal["pending", "translated", "dead_lettered"]


class _Out(BaseModel):
    model_config = ConfigDict(frozen=True)


class MessageOut(_Out):
    """One archived message as the browser lists it (no payload)."""

    raw_ref: str
    system: str
    site: str
    control_id: str = Field(description="The source's own id: MSH-10, file name, FHIR id")
    message_type: str | None = Field(description="e.g. DFT^P03 (HL7 over MLLP); None for files")
    transport: str
    size: int
    sha256: str
    received_at: datetime
    status: Status
    events: int = Field(description="Canonical events it became")
    failures: int = Field(description="Units dead-lettered")
    error: str | None


class MessagePage(_Out):
    items: list[MessageOut]
    total: int = Field(description="Messages matching the filters (in the key's scope), over all pages")
    total_exact: bool = Field(
        description="False when more than 100,000 match: `total` then says at least (narrow the filter)"
    )
    limit: int
    offset: int


class LedgerPosition(_Out):
    topic: str
    partition: int
    seq: int
    offset: int | None
    entry_hash: str


class EventOut(_Out):
    event_id: str
    event_type: str
    subject: str
    recorded_at: datetime
    ledger: LedgerPosition | None = Field(description="Its audit-ledger entry (None until recorded)")


class DeadLetterOut(_Out):
    dead_letter_id: str
    position: str
    reason: str
    code: str
    status: str
    attempts: int
    mapping_version: str | None
    failed_at: datetime


class MessageDetail(MessageOut):
    """One message's trail: what it is, what it became, what the sender was told, what failed."""

    metadata: dict[str, str]
    mapping_version: str | None = None
    became: list[EventOut]
    ack: list[str] | None = Field(description="The answer sent (HL7 ACK segments), if one was kept")
    dead_letters: list[DeadLetterOut]
    accounting: dict[str, Any] | None = Field(
        default=None,
        description="Where the source fields went once translated: rows, cells, claimed, ignored and"
        " the cells per unclaimed column or field (counts and names only), as HEAD /raw/{ref} says",
    )


class ReprocessIn(BaseModel):
    """One message (`raw_ref`) or every message the filters match (at least one filter)."""

    model_config = ConfigDict(extra="forbid")
    raw_ref: str | None = Field(default=None, max_length=200)
    system: str | None = Field(default=None, max_length=64)
    message_type: str | None = Field(default=None, max_length=64)
    status: Status | None = None
    received_from: datetime | None = None
    received_to: datetime | None = None
    control_id: str | None = Field(default=None, max_length=200)
    q: str | None = Field(default=None, max_length=200)


class ReprocessOut(_Out):
    matched: int = Field(description="Messages the request named (in the key's scope)")
    retried: int
    resolved: int = Field(description="Dead letters that no longer fail")
    still_open: int


def browser(services: ServicesDep) -> MessageBrowser:
    return services.messages


BrowserDep = Annotated["MessageBrowser", Depends(browser)]


def _aware(value: datetime | None, zone: tzinfo) -> datetime | None:
    """In UTC; a time without an offset is the site's local time (HUB_TZ), as in the other filters.
    A time at the calendar's edge (year 1 east of UTC) is clamped, not an overflow."""
    if value is None:
        return None
    local = value.replace(tzinfo=zone) if value.tzinfo is None else value
    try:
        return local.astimezone(UTC)
    except OverflowError:
        return datetime.min.replace(tzinfo=UTC) if local.year < 2 else datetime.max.replace(tzinfo=UTC)


async def _scoped(query: RawQuery, scope: Scope, messages: MessageBrowser) -> RawQuery:
    if scope.department is None:
        return query
    refs = await messages.department_refs(scope.department)
    if query.refs is not None:
        refs = [r for r in refs if r in set(query.refs)]
    return replace(query, refs=refs)


def _out_record(record: RawRecord) -> dict[str, Any]:
    return {
        "raw_ref": record.raw_ref,
        "system": record.system,
        "site": record.site,
        "control_id": record.message_id,
        "message_type": record.metadata.get("message_type"),
        "transport": record.transport,
        "size": record.size,
        "sha256": record.sha256,
        "received_at": record.received_at,
    }


def _out(summary: RawSummary) -> dict[str, Any]:
    return {
        **_out_record(summary.record),
        "status": summary.status,
        "events": summary.events,
        "failures": summary.failures,
        "error": summary.error,
    }


@router.get("", response_model=MessagePage, summary="Archived messages: find one by id, type, status or time")
async def list_messages(
    messages: BrowserDep,
    scope: ScopeDep,
    zone: ZoneDep,
    *,
    system: Annotated[
        str | None, Query(max_length=64, description="Source system: his, hrp, spd, oa, fhir")
    ] = None,
    message_type: Annotated[
        str | None, Query(alias="type", max_length=64, description="e.g. DFT^P03")
    ] = None,
    status: Annotated[Status | None, Query()] = None,
    received_from: Annotated[
        IsoDateTime | None, Query(alias="from", description="Received from (incl.)")
    ] = None,
    received_to: Annotated[IsoDateTime | None, Query(alias="to", description="Received before")] = None,
    control_id: Annotated[str | None, Query(max_length=200, description="MSH-10, file name")] = None,
    q: Annotated[str | None, Query(max_length=200, description="Text in the id or metadata")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
    offset: Offset = 0,
) -> MessagePage:
    query = RawQuery(
        system=system,
        message_type=message_type,
        status=status,
        received_from=_aware(received_from, zone),
        received_to=_aware(received_to, zone),
        control_id=control_id,
        text=q or None,
        limit=limit,
        offset=offset,
        count_limit=COUNT_LIMIT + 1,
    )
    found, total = await messages.browse(await _scoped(query, scope, messages))
    return MessagePage(
        items=[MessageOut(**_out(s)) for s in found],
        total=min(total, COUNT_LIMIT),
        total_exact=total <= COUNT_LIMIT,
        limit=limit,
        offset=offset,
    )


RefPath = Annotated[str, Path(max_length=200, description="e.g. his:3f1c...")]


@router.get(
    "/{raw_ref}",
    response_model=MessageDetail,
    summary="One message: status, the events it became, the ACK sent, its dead letters",
    responses={http.HTTP_404_NOT_FOUND: {"description": "No such message (in the key's scope)"}},
)
async def get_message(raw_ref: RefPath, messages: BrowserDep, scope: ScopeDep) -> MessageDetail:
    record = await messages.record(raw_ref)
    if record is None or not await scope.sees_raw(raw_ref):
        raise HTTPException(http.HTTP_404_NOT_FOUND, f"no raw message {raw_ref!r}")
    state = await messages.status(raw_ref)
    answer = await messages.answer(raw_ref)
    letters = await messages.dead_letters(raw_ref)
    summary = {
        **_out_record(record),
        "status": state.status if state else "pending",
        "events": state.events if state else 0,
        "failures": state.failures if state else 0,
        "error": state.error if state else None,
    }
    return MessageDetail(
        **summary,
        metadata=dict(record.metadata),
        became=[EventOut(**e) for e in await messages.events(raw_ref)],
        ack=None
        if answer is None
        else [s for s in answer.decode("utf-8", "replace").strip("\x0b\x1c\r\n").split("\r") if s],
        accounting=state.accounting if state else None,
        dead_letters=[
            DeadLetterOut(
                dead_letter_id=d.dead_letter_id,
                position=d.position,
                reason=d.reason,
                code=d.code,
                status=d.status,
                attempts=d.attempts,
                mapping_version=d.mapping_version,
                failed_at=d.failed_at,
            )
            for d in letters
        ],
    )


@reprocess_router.post(
    "/reprocess",
    response_model=ReprocessOut,
    summary="Translate one message, or every message a filter matches, again with the current mapping",
    responses={
        http.HTTP_404_NOT_FOUND: {"description": "No such message (in the key's scope)"},
        http.HTTP_422_UNPROCESSABLE_CONTENT: {
            "description": "No message and no filter named, or too many match"
        },
    },
)
async def reprocess(
    body: ReprocessIn, messages: BrowserDep, scope: ScopeDep, services: ServicesDep
) -> ReprocessOut:
    letters = services.dead_letters
    if body.raw_ref is not None:
        if await messages.record(body.raw_ref) is None or not await scope.sees_raw(body.raw_ref):
            raise HTTPException(http.HTTP_404_NOT_FOUND, f"no raw message {body.raw_ref!r}")
        refs = [body.raw_ref]
    else:
        filters = body.model_dump(exclude={"raw_ref"}, exclude_none=True)
        if not filters:
            raise HTTPException(
                http.HTTP_422_UNPROCESSABLE_CONTENT,
                "name a raw_ref or at least one filter (reprocessing all is refused)",
            )
        query = RawQuery(
            system=body.system,
            message_type=body.message_type,
            status=body.status,
            received_from=_aware(body.received_from, services.zone),
            received_to=_aware(body.received_to, services.zone),
            control_id=body.control_id,
            text=body.q or None,
            limit=MAX_REPROCESS + 1,
            count_limit=MAX_REPROCESS + 1,
        )
        found, total = await messages.browse(await _scoped(query, scope, messages))
        if total > MAX_REPROCESS:
            raise HTTPException(
                http.HTTP_422_UNPROCESSABLE_CONTENT,
                f"{total} messages match, over {MAX_REPROCESS} per call: narrow the filter (e.g. from/to)",
            )
        refs = [s.record.raw_ref for s in reversed(found)]  # oldest first, as they arrived
    outcome = await letters.reprocess(refs)
    return ReprocessOut(
        matched=len(refs), retried=outcome.retried, resolved=outcome.resolved, still_open=outcome.still_open
    )


class MessageText(_Out):
    """The payload as text, decoded as the hub's translator reads it; HL7 one segment a line."""

    raw_ref: str
    charset: str = Field(description="The Python codec the hub decoded it with (utf-8, gb18030, ...)")
    lines: list[str] = Field(description="HL7 segments, or the lines of an export file")
    truncated: bool = Field(description="More lines than shown: GET /raw/{raw_ref} has the bytes")


@router.get(
    "/{raw_ref}/text",
    response_model=MessageText,
    summary="The raw message as text, segments laid out (auditor, admin; every read recorded)",
    responses={
        http.HTTP_404_NOT_FOUND: {"description": "No such message (in the key's scope)"},
        http.HTTP_422_UNPROCESSABLE_CONTENT: {"description": "The bytes do not decode (see /raw)"},
        http.HTTP_503_SERVICE_UNAVAILABLE: {"description": "The read cannot be recorded on the audit ledger"},
    },
)
async def message_text(
    raw_ref: RefPath, messages: BrowserDep, reader: RawReaderDep, scope: ScopeDep, audit: AuditDep
) -> MessageText:
    # Patient data: the raw_payload permission and the audit record, exactly as GET /raw.
    record = await gate_raw(
        reader, scope, audit, raw_ref, action="raw.read", permission=Permission.RAW_PAYLOAD
    )
    try:
        decoded = await messages.text(record)
    except MalformedMessage as exc:
        raise HTTPException(http.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from None
    return MessageText(
        raw_ref=raw_ref, charset=decoded.charset, lines=decoded.lines, truncated=decoded.truncated
    )
