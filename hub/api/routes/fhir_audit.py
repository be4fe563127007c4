"""FHIR AuditEvent: the audited reads of the audit ledger, for auditors (and admins).

`GET /fhir/AuditEvent/{id}` and `GET /fhir/AuditEvent?date=&agent=`. The ledger is hospital-wide:
a department-scoped key is refused (403), like the event stream; other roles get 403 too.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response  # noqa: TC002  (FastAPI reads the return annotation)

from hub.api.deps import EngineDep, ZoneDep  # noqa: TC001  (FastAPI reads the annotations at runtime)
from hub.api.fhir import audit as fhir_audit
from hub.api.fhir.answer import RESPONSES
from hub.api.fhir.bundle import PagingDep, not_found, searchset, updated_range
from hub.api.fhir.wire import Wire, WireDep, read
from hub.api.scope import ScopeDep, whole_hospital
from projections.audit.access import get_access, list_access

router = APIRouter(prefix="/fhir", tags=["fhir"], dependencies=[whole_hospital("AuditEvent")])


def _resource(wire: Wire, event: dict[str, Any]) -> dict[str, Any]:
    resource = fhir_audit.audit_event(event)
    return fhir_audit.r4b(resource, event) if wire.version == "R4B" else resource


@router.get("/AuditEvent/{event_id}", summary="One audited read (auditor role)", responses=RESPONSES)
async def read_audit_event(
    event_id: str, request: Request, engine: EngineDep, scope: ScopeDep, wire: WireDep
) -> Response:
    del scope  # whole_hospital: unscoped keys only

    def load() -> dict[str, Any] | None:
        with engine.connect() as conn:
            return get_access(conn, event_id)

    event = await run_in_threadpool(load)
    if event is None:
        raise not_found(f"AuditEvent/{event_id}")
    return read(request, wire, _resource(wire, event))


@router.get("/AuditEvent", summary="Search audited reads (date, agent) (auditor role)", responses=RESPONSES)
async def search_audit_events(
    request: Request,
    *,
    engine: EngineDep,
    scope: ScopeDep,
    wire: WireDep,
    paging: PagingDep,
    zone: ZoneDep,
    date: Annotated[
        list[str] | None, Query(description="[eq|ge|gt|le|lt]date or dateTime; repeatable")
    ] = None,
    agent: Annotated[str | None, Query(description="The API key id that read")] = None,
) -> Response:
    del scope
    recorded_from, recorded_to = updated_range(date or [], zone, parameter="date")

    def find() -> tuple[list[dict[str, Any]], int]:
        with engine.connect() as conn:
            return list_access(
                conn,
                key_id=agent.rpartition("|")[2] if agent else None,
                recorded_from=recorded_from,
                recorded_to=recorded_to,
                limit=paging.count,
                offset=paging.offset,
            )

    events, total = await run_in_threadpool(find)
    bundle = searchset(request, [_resource(wire, e) for e in events], total=total, paging=paging)
    return wire.respond(bundle)
