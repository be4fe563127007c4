"""The asset registry over HTTP: golden records, history, identity conflicts, a person's links.

- `GET /assets`: filters, plus `identifier=` (any identifier value, or `scheme:value`).
- `GET /assets/conflicts`: links the registry refused, for a person to resolve.
- `GET /assets/{id}`: any id of the device (a merged record's id answers with its golden record).
- `GET /assets/{id}/history`: every event, oldest first, with source system and raw reference.
- `POST /assets/{id}/identifiers`: publishes `asset.identifier_linked` (linked_by person) to
  canonical.asset.v1 through the hub's publisher; the registry applies it like any other link
  (202: accepted for processing, not yet applied). Needs the `write` permission (viewer, app
  and auditor keys get 403).

Department scope (a key created with `--department D`, D a code or a name): a device belongs to
the department the registry holds it in now (`department_code`/`department_name`, its home
department: a device lent out stays its lender's). A scoped key lists only those devices, and
any other id answers the same 404 as an unknown one (detail, history, links). An as-of view is
also shown when the device was in the key's department at that time. Conflicts are listed when
the holder or the claimant (or a record merged into either) is in scope; the other side's id
and the disputed identifier are shown, since resolving the conflict needs them.
"""

from __future__ import annotations

import uuid
from datetime import datetime, tzinfo  # noqa: TC003  (FastAPI resolves annotations at runtime)
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Query
from fastapi import status as http
from sqlalchemy import Connection, func, or_, select, union
from starlette.concurrency import run_in_threadpool

from hub.api.deps import (  # noqa: TC001  (FastAPI resolves annotations at runtime)
    AsOfDep,
    ConnDep,
    EngineDep,
    PublisherDep,
    ServicesDep,
    ZoneDep,
)
from hub.api.params import IsoDateTime, Offset  # noqa: TC001  (FastAPI reads the annotations at runtime)
from hub.api.routes.asset_models import (
    AssetDetailOut,
    AssetItemPage,
    ClockDep,
    ConflictOut,
    ConflictPage,
    HistoryItemOut,
    HistoryPage,
    LinkAccepted,
    LinkIn,
    detail,
    item,
)
from hub.api.scope import Scope, ScopeDep, require
from hub.api.services import AsOfReader, Publisher
from hub.auth.roles import Permission
from projections.assets.queries import (
    asset_history,
    get_asset,
    list_assets,
    list_conflicts,
    names_of,
    resolve_asset_id,
)
from projections.device_health.queries import devices_named, open_warnings_of

if TYPE_CHECKING:
    from sqlalchemy import Engine
from projections.assets.tables import assets, conflicts, merges
from replay.errors import RecordTampered
from schemas._base import Identifier, SourceSystem
from schemas.assets import AssetIdentifierLinked, AssetStatus, IdentifierLinkedPayload
from schemas.envelope import Source

router = APIRouter(prefix="/assets", tags=["assets"])

MAX_PAGE = 500
__all__ = ["AsOfReader", "Publisher", "router"]
AssetIdPath = Annotated[str, Path(max_length=64)]


def _not_found(asset_id: str) -> HTTPException:
    return HTTPException(
        http.HTTP_404_NOT_FOUND,
        detail=f"no asset with id {asset_id!r}: not a golden record, nor a record merged into one",
    )


@router.get("", response_model=AssetItemPage)
def read_assets(
    conn: ConnDep,
    clock: ClockDep,
    scope: ScopeDep,
    *,
    department: Annotated[str | None, Query(description="Department code or name, exact")] = None,
    status: Annotated[AssetStatus | None, Query(description="Harmonised status")] = None,
    name: Annotated[str | None, Query(description="Substring of the device name, case-insensitive")] = None,
    category: Annotated[str | None, Query(description="Category code or name, exact")] = None,
    identifier: Annotated[
        str | None,
        Query(
            description="Any identifier value (card no., UDI...), or scheme:value (hrp.card:ZC-2019-000123)"
        ),
    ] = None,
    provisional: Annotated[
        bool | None, Query(description="Only provisional (or only registered) records")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
    offset: Offset = 0,
) -> AssetItemPage:
    """Golden records matching every given filter, one page at a time, ordered by asset id."""
    department, reachable = scope.department_filter(department)
    if not reachable:
        return AssetItemPage(items=[], total=0, limit=limit, offset=offset)
    rows, total = list_assets(
        conn,
        department=department,
        status=status.value if status is not None else None,
        name=name,
        category=category,
        identifier=identifier,
        provisional=provisional,
        limit=limit,
        offset=offset,
    )
    now = clock.now()
    return AssetItemPage(items=[item(r, now) for r in rows], total=total, limit=limit, offset=offset)


@router.get("/conflicts", response_model=ConflictPage)
def read_conflicts(
    conn: ConnDep,
    scope: ScopeDep,
    *,
    status: Annotated[
        str, Query(pattern="^(open|resolved|all)$", description="open (default), resolved or all")
    ] = "open",
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
    offset: Offset = 0,
) -> ConflictPage:
    """Identity conflicts: an identifier two devices anchored by different HRP cards both claim."""
    wanted = None if status == "all" else status
    if scope.department is None:
        rows, total = list_conflicts(conn, status=wanted, limit=limit, offset=offset)
    else:
        rows, total = _scoped_conflicts(conn, scope.department, wanted, limit=limit, offset=offset)
    return ConflictPage(
        items=[ConflictOut.model_validate(r) for r in rows], total=total, limit=limit, offset=offset
    )


def _scoped_conflicts(
    conn: Connection, department: str, status: str | None, *, limit: int, offset: int
) -> tuple[list[dict[str, Any]], int]:
    """list_conflicts narrowed to conflicts with a side in `department` (same order and paging).

    A side is named by the record id the refused link named, which may since have been merged
    into a golden record, so merged record ids of in-scope devices count too.
    """
    # Here rather than in projections.assets.queries while that module is being reworked;
    # it belongs there as a `department=` filter of list_conflicts.
    home = select(assets.c.asset_id).where(
        or_(assets.c.department_code == department, assets.c.department_name == department)
    )
    ids = union(home, select(merges.c.record_id).where(merges.c.merged_into.in_(home))).subquery()
    c = conflicts.c
    where = [
        or_(c.holder_asset_id.in_(select(ids.c.asset_id)), c.claimant_asset_id.in_(select(ids.c.asset_id)))
    ]
    if status is not None:
        where.append(c.status == status)
    total = conn.execute(select(func.count()).select_from(conflicts).where(*where)).scalar_one()
    page = conn.execute(
        select(conflicts).where(*where).order_by(c.recorded_at, c.conflict_id).limit(limit).offset(offset)
    )
    return [dict(r) for r in page.mappings()], int(total)


def _visible(scope: Scope, row: dict[str, Any] | None) -> bool:
    return row is not None and scope.sees(row["department_code"], row["department_name"])


@router.get(
    "/{asset_id}",
    response_model=AssetDetailOut,
    responses={
        http.HTTP_404_NOT_FOUND: {"description": "The registry knows no device by this id"},
        http.HTTP_409_CONFLICT: {
            "description": "as_of/known_at: a log record it needs no longer matches the audit ledger"
        },
    },
)
async def read_asset(
    *,
    engine: EngineDep,
    as_of_reader: AsOfDep,
    zone: ZoneDep,
    clock: ClockDep,
    scope: ScopeDep,
    asset_id: AssetIdPath,
    as_of: Annotated[
        IsoDateTime | None, Query(description="Business time: only what had happened by then (occurred_at)")
    ] = None,
    known_at: Annotated[
        IsoDateTime | None,
        Query(description="Knowledge time: only what the hub had learned by then (recorded_at)"),
    ] = None,
) -> AssetDetailOut:
    """One golden record with all its identifiers, loan, calibration, contracts and merged ids.

    With `as_of` and/or `known_at` the record is rebuilt from the log as it stood then (bitemporal:
    a correction recorded later shows only with a later `known_at`). Times without a zone are
    read in the site's zone.
    """
    now = clock.now()
    live = as_of is None and known_at is None
    if live:
        row = await run_in_threadpool(_get_asset, engine, asset_id)
    else:
        try:
            row = await as_of_reader(asset_id, _aware(as_of, zone) or now, _aware(known_at, zone) or now)
        except RecordTampered as exc:
            # The log no longer matches the audit ledger: no reconstruction is served from it. Outside
            # the key's scope this stays a 404 (a refusal must not confirm that the device exists).
            if not _visible(scope, await run_in_threadpool(_get_asset, engine, asset_id)):
                raise _not_found(asset_id) from exc
            raise HTTPException(
                http.HTTP_409_CONFLICT,
                f"the log no longer matches the audit ledger, so no as-of view is served: {exc}"
                " (run `hub audit verify`)",
            ) from exc
    if row is None or not (
        _visible(scope, row)
        # An as-of view also shows to the device's department now: its past is that department's too.
        or (not live and _visible(scope, await run_in_threadpool(_get_asset, engine, asset_id)))
    ):
        raise _not_found(asset_id)
    return detail(row, now)


def _get_asset(engine: Engine, asset_id: str) -> dict[str, Any] | None:
    with engine.connect() as conn:
        row = get_asset(conn, asset_id)
        if row is not None:
            row["telemetry"] = _telemetry(conn, row["asset_id"])
        return row


def _telemetry(conn: Connection, golden: str) -> dict[str, Any] | None:
    """The latest report of the device's telemetry (any id it used) and its open warnings."""
    names = list(names_of(conn, [golden]))
    devices = sorted(devices_named(conn, names), key=lambda d: d["last_at"])
    if not devices:
        return None
    latest = devices[-1]
    found = open_warnings_of(conn, [d["subject"] for d in devices])
    warned = sorted({f"{w['rule_id']}: {w['reason']}" for ws in found.values() for w in ws})
    return {**latest, "early_warnings": warned}


def _aware(moment: datetime | None, zone: tzinfo) -> datetime | None:
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=zone)


@router.get(
    "/{asset_id}/history",
    response_model=HistoryPage,
    responses={http.HTTP_404_NOT_FOUND: {"description": "The registry knows no device by this id"}},
)
def read_history(
    conn: ConnDep,
    scope: ScopeDep,
    asset_id: AssetIdPath,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 100,
    offset: Offset = 0,
) -> HistoryPage:
    """Every event about the device (merged records' included), oldest first by business time."""
    golden = _resolve_visible(conn, scope, asset_id)
    if golden is None:
        raise _not_found(asset_id)
    rows, total = asset_history(conn, golden, limit=limit, offset=offset)
    return HistoryPage(
        asset_id=golden,
        items=[HistoryItemOut.model_validate(r) for r in rows],
        total=total,
        limit=limit,
        offset=offset,
    )


def _resolve_visible(conn: Connection, scope: Scope, asset_id: str) -> str | None:
    """The golden id of `asset_id` if the caller may see the device; None for unknown or out of scope."""
    if not scope.scoped:
        return resolve_asset_id(conn, asset_id)
    row = scope.asset(conn, asset_id)
    return None if row is None else str(row["asset_id"])


def _resolve(engine: Engine, scope: Scope, asset_id: str) -> str | None:
    with engine.connect() as conn:
        return _resolve_visible(conn, scope, asset_id)


@router.post(
    "/{asset_id}/identifiers",
    status_code=http.HTTP_202_ACCEPTED,
    response_model=LinkAccepted,
    responses={
        http.HTTP_404_NOT_FOUND: {"description": "The registry knows no device by this id"},
    },
    dependencies=[require(Permission.WRITE)],
)
async def link_identifier(
    services: ServicesDep,
    publish: PublisherDep,
    clock: ClockDep,
    scope: ScopeDep,
    asset_id: AssetIdPath,
    *,
    body: LinkIn,
) -> LinkAccepted:
    """A person links an identifier to this device: published as `asset.identifier_linked`."""
    golden = await run_in_threadpool(_resolve, services.engine, scope, asset_id)
    if golden is None:
        raise _not_found(asset_id)
    now = clock.now()
    # A person's statement has no source message: each request is its own fact.
    event_id = uuid.uuid4()
    event = AssetIdentifierLinked(
        event_id=event_id,
        occurred_at=now,
        recorded_at=now,
        source=Source(
            system=SourceSystem.HUB,
            site=services.site,
            message_id=f"api:assets/{golden}/identifiers:{event_id}",
            adapter_version="hub/api/1",
        ),
        subject=golden,
        payload=IdentifierLinkedPayload(
            identifier=Identifier(scheme=body.scheme, value=body.value), linked_by="person", actor=body.actor
        ),
    )
    await publish(event)
    return LinkAccepted(event_id=str(event_id), asset_id=golden)
