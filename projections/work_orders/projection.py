"""Work-order read model (projection `work_orders`): lifecycle, SLA, approval, cost, downtime.

Fed by `canonical.workorder.v1` and, for grouping and utilisation, `canonical.asset.v1`
(projections.work_orders.assets). Each work-order event is stored in its timeline
(`work_orders_events`) and the order's row is recomputed from the whole timeline
(projections.work_orders.lifecycle has the rules), so arrival order never matters. A
`workorder.request_corrected` (a retry after a mapping fix, hub.translation.corrections) replaces
the request's fields in its timeline row (under the original's event id): the order's reporting
department, asset, priority... read as corrected; a correction that comes first stands in for it.

SLA breaches (projections.work_orders.sla) are concluded twice over, both deterministic:
- on apply, after each event in stream order, from what the events prove (a clock stopped late,
  or an event showing the order still open after a due time); judging after every event, not
  once per batch, is what makes any batching of a stream conclude the same breaches;
- on `tick(conn, now)`, for running clocks whose next level is due by the runner's clock.

Configuration: projections.work_orders.config.WorkOrderConfig (SLA targets per priority,
escalation multipliers, on-hold exclusion, approval threshold, costing).
Queries: projections.work_orders.queries; KPIs over these tables: projections.work_orders.kpis.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import structlog
from sqlalchemy import case, func, select

from projections.runtime.upsert import chunks, in_values, upsert
from projections.work_orders.assets import ASSET_EVENT_TYPES, apply_asset_events
from projections.work_orders.config import WorkOrderConfig
from projections.work_orders.kpis import compute_kpis
from projections.work_orders.lifecycle import (
    OPEN_STATES,
    REQUESTED,
    SlaView,
    WorkOrderState,
    sla_view,
    summarise,
)
from projections.work_orders.sla import breach_event, next_due, reached
from projections.work_orders.tables import METADATA, NAME, breaches, events, orders, reports
from schemas.work_orders import (
    WORK_ORDER_EVENTS,
    WorkOrderApproved,
    WorkOrderAssigned,
    WorkOrderCancelled,
    WorkOrderClosed,
    WorkOrderCompleted,
    WorkOrderOnHold,
    WorkOrderRejected,
    WorkOrderReportAdded,
    WorkOrderRequestCorrected,
    WorkOrderRequested,
    WorkOrderStarted,
)

if TYPE_CHECKING:
    from collections.abc import Sequence
    from datetime import datetime

    from sqlalchemy import Connection

    from schemas.catalogue import Event
    from schemas.envelope import EventBase

logger = structlog.get_logger()

TOPICS = ("canonical.workorder.v1", "canonical.asset.v1")
_EVENT_COLUMNS = tuple(c.name for c in events.columns)
Concluded = set[tuple[str, int]]
Timelines = dict[str, list[dict[str, Any]]]


class WorkOrders:
    """The work-order projection (see the module docstring)."""

    name = NAME
    topics = TOPICS
    metadata = METADATA

    def __init__(self, config: WorkOrderConfig | None = None) -> None:
        self.config = config or WorkOrderConfig()

    def apply(self, conn: Connection, events_: Sequence[Event]) -> list[EventBase]:
        """Fold a batch; return the SLA breaches its events prove."""
        asset_events = [e for e in events_ if isinstance(e, ASSET_EVENT_TYPES)]
        if asset_events:
            apply_asset_events(conn, asset_events)
        added = [report_row(e) for e in events_ if isinstance(e, WorkOrderReportAdded)]
        if added:
            upsert(conn, reports, added, key=("event_id",), update=False)
        work = [
            e for e in events_ if isinstance(e, WORK_ORDER_EVENTS) and not isinstance(e, WorkOrderReportAdded)
        ]
        return self._fold(conn, work) if work else []

    def tick(self, conn: Connection, now: datetime) -> list[EventBase]:
        """Conclude the breach levels that running clocks have reached by `now`."""
        query = select(orders.c.workorder_id).where(orders.c.next_breach_at <= now)
        ids = sorted(conn.execute(query).scalars())
        if not ids:
            return []
        timelines, concluded = _load(conn, ids)
        derived: list[EventBase] = []
        breach_rows: list[dict[str, Any]] = []
        states: dict[str, WorkOrderState] = {}
        for workorder_id in ids:
            state = states[workorder_id] = summarise(workorder_id, timelines[workorder_id], self.config)
            derived += self._conclude(
                workorder_id,
                SlaView(state.clocks, now, state.row["site"]),
                concluded[workorder_id],
                causation_id=state.row["requested_event_id"],
                recorded_at=now,
                out=breach_rows,
            )
        upsert(conn, breaches, breach_rows, key=("workorder_id", "kind", "level"), update=False)
        upsert(conn, orders, [self._row(states[i], concluded[i]) for i in ids], key=("workorder_id",))
        return derived

    def _fold(self, conn: Connection, work: Sequence[EventBase]) -> list[EventBase]:
        ids = sorted({e.subject for e in work})
        timelines, concluded = _load(conn, ids)
        derived: list[EventBase] = []
        new_rows: dict[str, dict[str, Any]] = {}
        breach_rows: list[dict[str, Any]] = []
        touched: set[str] = set()
        corrected: dict[str, dict[str, Any]] = {}
        for event in work:
            row = timeline_row(event)
            timeline = timelines[event.subject]
            if isinstance(event, WorkOrderRequestCorrected):
                row = _correct(timeline, row)
                if row["event_id"] in new_rows:
                    new_rows[row["event_id"]] = row
                else:
                    corrected[row["event_id"]] = row
            elif any(r["event_id"] == row["event_id"] for r in timeline):
                # Already in the timeline (tracking normally filters this out first), or a request
                # whose correction came first: the corrected one stands.
                continue
            else:
                timeline.append(row)
                new_rows[row["event_id"]] = row
            touched.add(event.subject)
            derived += self._conclude(
                event.subject,
                sla_view(timeline, self.config),
                concluded[event.subject],
                causation_id=str(event.event_id),
                recorded_at=event.recorded_at,
                out=breach_rows,
            )
        upsert(conn, events, list(new_rows.values()), key=("event_id",), update=False)
        upsert(conn, events, list(corrected.values()), key=("event_id",))
        upsert(conn, breaches, breach_rows, key=("workorder_id", "kind", "level"), update=False)
        rows = [self._row(summarise(i, timelines[i], self.config), concluded[i]) for i in sorted(touched)]
        upsert(conn, orders, rows, key=("workorder_id",))
        return derived

    def _conclude(
        self,
        workorder_id: str,
        view: SlaView,
        concluded: Concluded,
        *,
        causation_id: str | None,
        recorded_at: datetime,
        out: list[dict[str, Any]],
    ) -> list[EventBase]:
        """Breaches `view` shows reached at its evidence time and not concluded before."""
        derived: list[EventBase] = []
        for clock in view.clocks:
            for breach in reached(clock, self.config.escalation_multipliers, view.evidence_at):
                if (breach.kind, breach.level) in concluded:
                    continue
                concluded.add((breach.kind, breach.level))
                event = breach_event(
                    workorder_id,
                    breach,
                    site=view.site,
                    causation_id=causation_id,
                    recorded_at=recorded_at,
                )
                derived.append(event)
                out.append(
                    {
                        "workorder_id": workorder_id,
                        "kind": breach.kind,
                        "level": breach.level,
                        "due_at": breach.due_at,
                        "event_id": str(event.event_id),
                    }
                )
        return derived

    def _row(self, state: WorkOrderState, concluded: Concluded) -> dict[str, Any]:
        row = dict(state.row)
        multipliers = self.config.escalation_multipliers
        for kind in ("response", "resolution"):
            row[f"{kind}_breach_level"] = max((lvl for k, lvl in concluded if k == kind), default=0)
        pending = [
            due
            for clock in state.clocks
            if (due := next_due(clock, multipliers, {lvl for k, lvl in concluded if k == clock.kind}))
            is not None
        ]
        row["next_breach_at"] = min(pending) if pending else None
        return row


def _load(conn: Connection, ids: Sequence[str]) -> tuple[Timelines, dict[str, Concluded]]:
    """The stored timelines and concluded breaches of these work orders."""
    timelines: Timelines = defaultdict(list)
    concluded: dict[str, Concluded] = defaultdict(set)
    for chunk in chunks(conn, ids):
        for r in conn.execute(
            events.select().where(in_values(conn, events.c.workorder_id, chunk))
        ).mappings():
            timelines[r["workorder_id"]].append(dict(r))
        query = select(breaches.c.workorder_id, breaches.c.kind, breaches.c.level).where(
            in_values(conn, breaches.c.workorder_id, chunk)
        )
        for workorder_id, kind, level in conn.execute(query):
            concluded[workorder_id].add((kind, level))
    return timelines, concluded


_REQUEST_COLUMNS = (
    "asset_scheme", "asset_value", "department_code", "department_name",
    "priority", "channel", "actor", "note",
)  # fmt: skip


def _correct(timeline: list[dict[str, Any]], row: dict[str, Any]) -> dict[str, Any]:
    """The timeline's request row as `row` (a corrected request, under the original's event id)
    corrects it: the request's fields replaced, its times and source kept. A correction that comes
    before its request stands in for it; the request, coming after, is then not applied."""
    original = next((r for r in timeline if r["event_id"] == row["event_id"]), None)
    if original is None:
        timeline.append(row)
        return row
    original.update({c: row[c] for c in _REQUEST_COLUMNS})
    return original


def report_row(event: WorkOrderReportAdded) -> dict[str, Any]:
    """The `work_orders_reports` row of a further report (the lifecycle is not touched)."""
    p = event.payload
    return {
        "event_id": str(event.event_id),
        "workorder_id": event.subject,
        "occurred_at": event.occurred_at,
        "department_code": p.reporting_department.code,
        "department_name": p.reporting_department.name,
        "symptom": p.symptom,
        "note": p.note,
        "channel": p.channel,
        "reported_by": p.reported_by,
    }


def timeline_row(event: EventBase) -> dict[str, Any]:
    """The `work_orders_events` row of one work-order event."""
    row: dict[str, Any] = dict.fromkeys(_EVENT_COLUMNS)
    row.update(
        event_id=str(event.event_id),
        workorder_id=event.subject,
        event_type=event.type,
        occurred_at=event.occurred_at,
        recorded_at=event.recorded_at,
        source_system=event.source.system.value,
        site=event.source.site,
        raw_ref=event.source.raw_ref,
    )
    if isinstance(event, WorkOrderRequested | WorkOrderRequestCorrected):
        # A correction's row is the corrected request under the original's event id.
        if isinstance(event, WorkOrderRequestCorrected):
            p = event.payload.request
            row.update(event_id=str(event.payload.corrects), event_type=REQUESTED)
        else:
            p = event.payload
        row.update(
            asset_scheme=p.asset.scheme,
            asset_value=p.asset.value,
            department_code=p.reporting_department.code,
            department_name=p.reporting_department.name,
            priority=p.priority.value,
            channel=p.channel,
            actor=p.requested_by,
            note=p.symptom,
        )
    elif isinstance(event, WorkOrderApproved):
        amount = event.payload.amount
        row.update(
            actor=event.payload.approver,
            level=event.payload.level,
            amount=amount.amount if amount else None,
            currency=amount.currency if amount else None,
        )
    elif isinstance(event, WorkOrderRejected):
        row.update(actor=event.payload.approver, level=event.payload.level, note=event.payload.reason)
    elif isinstance(event, WorkOrderAssigned):
        row.update(actor=event.payload.engineer, team=event.payload.team)
    elif isinstance(event, WorkOrderStarted):
        row.update(actor=event.payload.engineer)
    elif isinstance(event, WorkOrderOnHold | WorkOrderCancelled):
        row.update(note=event.payload.reason)
    elif isinstance(event, WorkOrderClosed):
        row.update(actor=event.payload.closed_by)
    elif isinstance(event, WorkOrderCompleted):
        row.update(_completion(event))
    return row


def _completion(event: WorkOrderCompleted) -> dict[str, Any]:
    p = event.payload
    priced = [part.cost for part in p.parts if part.cost is not None]
    currency = p.cost.currency if p.cost else (priced[0].currency if priced else None)
    same = [c.amount for c in priced if c.currency == currency]
    if len(same) != len(priced):
        # Not converted: amounts in another currency are left out of the parts total.
        logger.warning("work_order_parts_currency_mixed", event_id=str(event.event_id))
    return {
        "note": p.resolution,
        "amount": p.cost.amount if p.cost else None,
        "parts_amount": sum(same[1:], start=same[0]) if same else None,
        "currency": currency,
        "labour_hours": p.labour_hours,
        "downtime_minutes": p.downtime_minutes,
    }


def demo_summary(conn: Connection) -> list[tuple[str, list[str], list[list[str]]]]:
    """What `hub demo` prints: work orders by status, open ones, repairs that needed approval."""
    o = orders.c
    breached = (o.response_breach_level > 0) | (o.resolution_breach_level > 0)
    by_status = conn.execute(
        select(o.status, func.count(), func.sum(case((breached, 1), else_=0)))
        .group_by(o.status)
        .order_by(o.status)
    ).all()
    open_rows = conn.execute(
        select(o.workorder_id, o.asset_value, o.department_name, o.priority, o.status, o.requested_at)
        .where(o.status.in_(OPEN_STATES))
        .order_by(o.requested_at.desc(), o.workorder_id)
        .limit(8)
    ).all()
    approvals = conn.execute(
        select(o.workorder_id, o.approval_amount, o.approval_state, o.approval_level, o.completed_unapproved)
        .where(o.approval_required.is_(True))
        .order_by(o.approval_amount.desc(), o.workorder_id)
        .limit(8)
    ).all()
    text = _cells
    newest = conn.execute(select(func.max(o.last_event_at))).scalar()
    kpis: list[list[str]] = []
    if newest is not None:
        year = compute_kpis(
            conn, group_by="category", start=newest - timedelta(days=365), end=newest, now=newest
        )
        kpis = [
            text(
                [
                    k["key"],
                    k["name"],
                    k["devices"],
                    k["uptime_pct"],
                    k["repairs"],
                    k["mttr_hours"],
                    k["maintenance_cost"],
                ]
            )
            for k in sorted(year, key=lambda k: -k["repairs"])[:8]
        ]
    return [
        ("Work orders by status", ["status", "count", "SLA breached"], [text(r) for r in by_status]),
        (
            "Open work orders (newest first)",
            ["work order", "asset", "department", "priority", "status", "requested at"],
            [text(r) for r in open_rows],
        ),
        (
            "Repairs at or above the approval threshold",
            ["work order", "amount", "approval", "level", "completed unapproved"],
            [text(r) for r in approvals],
        ),
        (
            f"KPIs by category, 365 days to {newest:%Y-%m-%d} (the newest work-order event)"
            if newest
            else "KPIs by category",
            ["category", "name", "devices", "uptime %", "repairs", "MTTR h", "maintenance cost"],
            kpis,
        ),
    ]


def _cells(row: Sequence[Any]) -> list[str]:
    return ["" if v is None else str(v) for v in row]
