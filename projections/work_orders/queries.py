"""Queries the API serves over the `work_orders` tables: a filtered page, and one order with its timeline.

A work order's asset is resolved at query time: the id minted from the identifier the request
named, or the asset that identifier is linked to in the crosswalk. `now` (the API's clock) decides
`sla_breached` for running clocks between two ticks of the projection.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import and_, func, or_, select

from projections.work_orders.lifecycle import OPEN_STATES
from projections.work_orders.tables import assets, breaches, events, identifiers, orders, reports

if TYPE_CHECKING:
    from datetime import datetime

    from sqlalchemy import ColumnElement, Connection, FromClause

_link = identifiers.alias("wo_link")
resolved_asset_id: ColumnElement[str] = func.coalesce(_link.c.asset_id, orders.c.asset_ref)
_INTERNAL = frozenset({"next_breach_at", "requested_event_id"})
_FROM: FromClause = orders.outerjoin(_link, _link.c.minted_id == orders.c.asset_ref).outerjoin(
    assets, assets.c.asset_id == resolved_asset_id
)
_COLUMNS = [
    *(c for c in orders.columns if c.name not in _INTERNAL),
    resolved_asset_id.label("asset_id"),
    assets.c.name.label("asset_name"),
    assets.c.category_code.label("asset_category_code"),
    assets.c.category_name.label("asset_category_name"),
    assets.c.department_code.label("asset_department_code"),
    assets.c.department_name.label("asset_department_name"),
]
STATUSES = (*OPEN_STATES, "completed", "closed", "cancelled", "rejected")


def breached_at(now: datetime) -> ColumnElement[bool]:
    """True where a breach was concluded, or a running clock is past its level-1 due time at `now`."""
    o = orders.c
    return or_(
        o.response_breach_level > 0,
        o.resolution_breach_level > 0,
        and_(o.response_stop_at.is_(None), o.response_due_at.is_not(None), o.response_due_at <= now),
        and_(o.resolution_stop_at.is_(None), o.resolution_due_at.is_not(None), o.resolution_due_at <= now),
    )


def _is_breached(row: dict[str, Any], now: datetime) -> bool:
    if row["response_breach_level"] or row["resolution_breach_level"]:
        return True
    return any(
        row[f"{kind}_stop_at"] is None and row[f"{kind}_due_at"] is not None and row[f"{kind}_due_at"] <= now
        for kind in ("response", "resolution")
    )


@dataclass(frozen=True, slots=True)
class WorkOrderFilter:
    """Filters of `list_work_orders`; None means "any".

    `status` is a lifecycle state or `open` (any state before completion, rejection or
    cancellation); `department` is the reporting department's code or name; `asset` is a hub
    asset id or any identifier value of the asset (one hop through the crosswalk);
    `requested_from`/`requested_to` bound the request time (from inclusive, to exclusive);
    `sla_breached` is judged at the query's `now`. `scope` is a caller's department (code or
    name): only work orders it reported, or on an asset whose department it is (see `in_scope`).
    """

    status: str | None = None
    priority: str | None = None
    department: str | None = None
    asset: str | None = None
    sla_breached: bool | None = None
    approval_state: str | None = None
    requested_from: datetime | None = None
    requested_to: datetime | None = None
    scope: str | None = None
    statuses: tuple[str, ...] | None = None  # any of these states (FHIR Task.status groups them)

    def conditions(self, conn: Connection, now: datetime) -> list[ColumnElement[bool]]:
        """WHERE clauses over `work_orders_orders` alone (the asset filter is resolved first)."""
        o = orders.c
        out: list[ColumnElement[bool]] = []
        if self.status == "open":
            out.append(o.status.in_(OPEN_STATES))
        elif self.status is not None:
            out.append(o.status == self.status)
        if self.statuses is not None:
            out.append(o.status.in_(self.statuses))
        if self.priority is not None:
            out.append(o.priority == self.priority)
        if self.department is not None:
            out.append(or_(o.department_code == self.department, o.department_name == self.department))
        if self.asset is not None:
            out.append(or_(o.asset_ref.in_(_asset_refs(conn, self.asset)), o.asset_value == self.asset))
        if self.sla_breached is not None:
            out.append(breached_at(now) if self.sla_breached else ~breached_at(now))
        if self.approval_state is not None:
            out.append(o.approval_state == self.approval_state)
        return out + self._window_and_scope()

    def _window_and_scope(self) -> list[ColumnElement[bool]]:
        o = orders.c
        out: list[ColumnElement[bool]] = []
        if self.requested_from is not None:
            out.append(o.requested_at >= self.requested_from)
        if self.requested_to is not None:
            out.append(o.requested_at < self.requested_to)
        if self.scope is not None:
            out.append(_scope_condition(self.scope))
        return out


def _scope_condition(department: str) -> ColumnElement[bool]:
    """Reported by `department`, or on an asset of it (the asset's id, or an id minted from one of
    its identifiers: the two ways `resolved_asset_id` resolves a work order's asset)."""
    o, a, i = orders.c, assets.c, identifiers.c
    home = select(a.asset_id).where(or_(a.department_code == department, a.department_name == department))
    return or_(
        o.department_code == department,
        o.department_name == department,
        o.asset_ref.in_(home),
        o.asset_ref.in_(select(i.minted_id).where(i.asset_id.in_(home))),
    )


def in_scope(row: dict[str, Any], department: str) -> bool:
    """Whether a work order row (from `get_work_order`) is reported by `department` or on its asset;
    the same rule as `WorkOrderFilter.scope`."""
    return department in (
        row["department_code"],
        row["department_name"],
        row["asset_department_code"],
        row["asset_department_name"],
    )


def _asset_refs(conn: Connection, asset: str) -> list[str]:
    """The asset references a work order on `asset` (a hub id or any identifier value) can carry:
    the asset's own id and the ids minted from every identifier linked to it."""
    i = identifiers.c
    targets = {asset, *conn.execute(select(i.asset_id).where(i.value == asset)).scalars()}
    minted = conn.execute(select(i.minted_id).where(i.asset_id.in_(sorted(targets)))).scalars()
    return sorted(targets | set(minted))


def list_work_orders(
    conn: Connection,
    where: WorkOrderFilter,
    *,
    now: datetime,
    limit: int = 50,
    offset: int = 0,
) -> tuple[list[dict[str, Any]], int]:
    """One page of work orders matching `where` (newest request first) and the total over all pages."""
    conditions = where.conditions(conn, now)
    total = conn.execute(select(func.count()).select_from(orders).where(*conditions)).scalar_one()
    newest_first = (orders.c.requested_at.desc().nulls_last(), orders.c.workorder_id.desc())
    # The page's ids first, from the orders table alone (an index walk for deep pages), then the
    # joins for those 50 rows only.
    page = (
        select(orders.c.workorder_id)
        .where(*conditions)
        .order_by(*newest_first)
        .limit(limit)
        .offset(offset)
        .subquery("wo_page")
    )
    query = (
        select(*_COLUMNS)
        .select_from(_FROM.join(page, page.c.workorder_id == orders.c.workorder_id))
        .order_by(*newest_first)
    )
    rows = [dict(r) for r in conn.execute(query).mappings()]
    for row in rows:
        row["sla_breached"] = _is_breached(row, now)
    return rows, int(total)


def get_work_order(conn: Connection, workorder_id: str, *, now: datetime) -> dict[str, Any] | None:
    """One work order with its timeline (oldest first) and concluded breaches, or None."""
    found = conn.execute(select(*_COLUMNS).select_from(_FROM).where(orders.c.workorder_id == workorder_id))
    row = found.mappings().first()
    if row is None:
        return None
    out = dict(row)
    out["sla_breached"] = _is_breached(out, now)
    timeline = events.select().where(events.c.workorder_id == workorder_id)
    out["timeline"] = [
        dict(r)
        for r in conn.execute(
            timeline.order_by(events.c.occurred_at, events.c.recorded_at, events.c.event_id)
        ).mappings()
    ]
    concluded = (
        select(breaches.c.kind, breaches.c.level, breaches.c.due_at, breaches.c.event_id)
        .where(breaches.c.workorder_id == workorder_id)
        .order_by(breaches.c.kind, breaches.c.level)
    )
    out["breaches"] = [dict(r) for r in conn.execute(concluded).mappings()]
    out["reports"] = reports_of(conn, [workorder_id]).get(workorder_id, [])
    return out


def reports_of(conn: Connection, workorder_ids: list[str]) -> dict[str, list[dict[str, Any]]]:
    """Further reports (`workorder.report_added`) of these work orders, oldest first."""
    out: dict[str, list[dict[str, Any]]] = {}
    if not workorder_ids:
        return out
    query = (
        select(reports)
        .where(reports.c.workorder_id.in_(workorder_ids))
        .order_by(reports.c.occurred_at, reports.c.event_id)
    )
    for r in conn.execute(query).mappings():
        out.setdefault(r["workorder_id"], []).append(dict(r))
    return out
