"""A work order's state as a pure function of its whole timeline (the `work_orders_events` rows).

Recomputing from the full timeline is what makes the read model order-tolerant: the same set of
events gives the same row whatever order they arrived in. The rules:

- Status: the event furthest along the lifecycle wins; events of equal rank (approved/rejected,
  started/on_hold, closed/cancelled) are decided by the later `occurred_at` (then event id, for
  determinism). Ranks: requested 0, approved|rejected 1, assigned 2, started|on_hold 3,
  completed 4, closed|cancelled 5. A late `assigned` after `completed` fills the assignment
  fields but the state stays `completed`.
- First times stop clocks (first assigned/started = response, first completion = resolution,
  or closure without completion); the latest event of a kind supplies its fields (a re-sent
  completion corrects the figures; a re-assignment names the new engineer).
- Hold intervals: from `on_hold` to the next started/completed/closed/cancelled event.
- Cost: the latest completion's cost (the total, parts included, see WorkOrderConfig), else the
  sum of its priced parts.
- Approval: amount = the largest approved amount, else the cost. `approval_required` when that
  amount reaches the threshold. State: the latest decision (approved/rejected); with none,
  `pending` when required, `not_required` otherwise. A completion of a required, unapproved
  repair sets `completed_unapproved`.
- Downtime: the completion's `downtime_minutes` (ending at the completion), else requested ->
  completed (or closed). An open work order is down from its request until now (`down_to` NULL);
  a cancelled or rejected one counts no downtime.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import TYPE_CHECKING, Any, Literal

from schemas._base import Identifier
from schemas.ids import asset_id_for

if TYPE_CHECKING:
    from collections.abc import Sequence

    from projections.work_orders.config import WorkOrderConfig

Row = Mapping[str, Any]

REQUESTED, APPROVED, REJECTED = "workorder.requested", "workorder.approved", "workorder.rejected"
ASSIGNED, STARTED, ON_HOLD = "workorder.assigned", "workorder.started", "workorder.on_hold"
COMPLETED, CLOSED, CANCELLED = "workorder.completed", "workorder.closed", "workorder.cancelled"

RANK: Mapping[str, int] = {
    REQUESTED: 0,
    APPROVED: 1,
    REJECTED: 1,
    ASSIGNED: 2,
    STARTED: 3,
    ON_HOLD: 3,
    COMPLETED: 4,
    CLOSED: 5,
    CANCELLED: 5,
}
_RESUMES = frozenset({STARTED, COMPLETED, CLOSED, CANCELLED})
_STOPPED_STATES = frozenset({"cancelled", "rejected"})
OPEN_STATES = ("requested", "approved", "assigned", "started", "on_hold")

ClockKind = Literal["response", "resolution"]
_ZERO = timedelta(0)


@dataclass(frozen=True, slots=True)
class Hold:
    """Time on hold; `end` None while still on hold."""

    start: datetime
    end: datetime | None


@dataclass(frozen=True, slots=True)
class SlaClock:
    """One SLA clock of a work order: started at the request, stopped (or not yet) by an event."""

    kind: ClockKind
    start: datetime
    target: timedelta
    stop: datetime | None
    holds: tuple[Hold, ...]  # only when time on hold is excluded

    def due(self, multiplier: float) -> datetime | None:
        """When `target x multiplier` of running time is used up; None while paused on hold."""
        due = self.start + self.target * multiplier
        for hold in self.holds:
            if hold.start >= due:
                break
            if hold.end is None:
                return None
            begin = max(hold.start, self.start)
            if hold.end > begin:
                due += hold.end - begin
        return due


@dataclass(frozen=True, slots=True)
class WorkOrderState:
    """The computed `orders` row (without breach bookkeeping) and the SLA clocks."""

    row: dict[str, Any]
    clocks: tuple[SlaClock, ...]


def _order(e: Row) -> tuple[datetime, int, str]:
    return (e["occurred_at"], RANK[e["event_type"]], e["event_id"])


def _first(events: Sequence[Row]) -> Row | None:
    return min(events, key=_order) if events else None


def _last(events: Sequence[Row]) -> Row | None:
    return max(events, key=_order) if events else None


def _at(e: Row | None) -> datetime | None:
    return e["occurred_at"] if e is not None else None


def holds_of(timeline: Sequence[Row]) -> tuple[Hold, ...]:
    """Hold intervals, in time order."""
    out: list[Hold] = []
    start: datetime | None = None
    for e in sorted(timeline, key=_order):
        if e["event_type"] == ON_HOLD and start is None:
            start = e["occurred_at"]
        elif e["event_type"] in _RESUMES and start is not None:
            out.append(Hold(start, e["occurred_at"]))
            start = None
    if start is not None:
        out.append(Hold(start, None))
    return tuple(out)


def _minutes(delta: timedelta) -> int:
    return int(delta.total_seconds() // 60)


def _cost(done: Row | None, config: WorkOrderConfig) -> tuple[Decimal | None, Decimal | None, str | None]:
    """(total, parts, currency) of the latest completion."""
    if done is None:
        return None, None, None
    cost, parts = done["amount"], done["parts_amount"]
    if cost is None:
        return parts, parts, done["currency"]
    total = cost if config.cost_includes_parts or parts is None else cost + parts
    return total, parts, done["currency"]


def _approval(
    by_type: Mapping[str, list[Row]], total: Decimal | None, config: WorkOrderConfig
) -> dict[str, Any]:
    approvals = by_type[APPROVED]
    amounts = [e["amount"] for e in approvals if e["amount"] is not None and e["currency"] == config.currency]
    amount = max(amounts) if amounts else total
    required = amount is not None and amount >= config.approval_threshold
    decision = _last(approvals + by_type[REJECTED])
    if decision is not None:
        state = "approved" if decision["event_type"] == APPROVED else "rejected"
    else:
        state = "pending" if required else "not_required"
    latest_approval = _last(approvals)
    levels = [e["level"] for e in approvals if e["level"] is not None]
    return {
        "approval_required": required,
        "approval_state": state,
        "approval_amount": amount,
        "approval_level": max(levels) if levels else None,
        "approver": latest_approval["actor"] if latest_approval else None,
        "approved_at": _at(latest_approval),
        "rejected_at": _at(_last(by_type[REJECTED])),
    }


@dataclass(frozen=True, slots=True)
class _Facts:
    """What the rules read from a timeline, computed once."""

    by_type: dict[str, list[Row]]
    state_event: Row
    status: str
    request: Row | None
    completed_at: datetime | None
    closed_at: datetime | None
    responded_at: datetime | None
    resolved_at: datetime | None
    ended_at: datetime | None  # when a cancellation or rejection stopped the clocks
    holds: tuple[Hold, ...]

    @classmethod
    def of(cls, timeline: Sequence[Row]) -> _Facts:
        by_type: dict[str, list[Row]] = {t: [] for t in RANK}
        for e in timeline:
            by_type[e["event_type"]].append(e)
        state_event = max(timeline, key=lambda e: (RANK[e["event_type"]], e["occurred_at"], e["event_id"]))
        status = state_event["event_type"].removeprefix("workorder.")
        responded = [t for t in (_at(_first(by_type[ASSIGNED])), _at(_first(by_type[STARTED]))) if t]
        completed_at, closed_at = _at(_first(by_type[COMPLETED])), _at(_first(by_type[CLOSED]))
        return cls(
            by_type=by_type,
            state_event=state_event,
            status=status,
            request=_first(by_type[REQUESTED]),
            completed_at=completed_at,
            closed_at=closed_at,
            responded_at=min(responded) if responded else None,
            resolved_at=completed_at or closed_at,
            ended_at=state_event["occurred_at"] if status in _STOPPED_STATES else None,
            holds=holds_of(timeline),
        )

    def clocks(self, config: WorkOrderConfig) -> tuple[SlaClock, ...]:
        if self.request is None:
            return ()
        start, target = self.request["occurred_at"], config.target(self.request["priority"])
        paused = self.holds if config.exclude_on_hold else ()
        return (
            SlaClock("response", start, target.response, self.responded_at or self.ended_at, paused),
            SlaClock("resolution", start, target.resolution, self.resolved_at or self.ended_at, paused),
        )

    @property
    def site(self) -> str:
        return str((self.request or self.state_event)["site"])


@dataclass(frozen=True, slots=True)
class SlaView:
    """A work order's SLA clocks, the newest business time its events prove, and its site."""

    clocks: tuple[SlaClock, ...]
    evidence_at: datetime
    site: str


def sla_view(timeline: Sequence[Row], config: WorkOrderConfig) -> SlaView:
    """Just the SLA side of `summarise` (cheaper: apply judges breaches after every event)."""
    facts = _Facts.of(timeline)
    return SlaView(facts.clocks(config), max(e["occurred_at"] for e in timeline), facts.site)


def _downtime(f: _Facts, done: Row | None) -> tuple[int | None, datetime | None, datetime | None]:
    """(minutes, down from, down to) by the rules in the module docstring."""
    if f.request is None or f.status in _STOPPED_STATES:
        return None, None, None
    requested_at = f.request["occurred_at"]
    if done is not None and done["downtime_minutes"] is not None and f.completed_at is not None:
        minutes = done["downtime_minutes"]
        return minutes, f.completed_at - timedelta(minutes=minutes), f.completed_at
    if f.resolved_at is not None:
        return max(0, _minutes(f.resolved_at - requested_at)), requested_at, f.resolved_at
    return None, requested_at, None


def _request_columns(request: Row | None) -> dict[str, Any]:
    columns = ("priority", "asset_scheme", "asset_value", "department_code", "department_name", "channel")
    out = {c: request[c] if request else None for c in columns}
    out.update(
        asset_ref=_minted(request),
        symptom=request["note"] if request else None,
        requested_by=request["actor"] if request else None,
        requested_at=_at(request),
        requested_event_id=request["event_id"] if request else None,
    )
    return out


def summarise(workorder_id: str, timeline: Sequence[Row], config: WorkOrderConfig) -> WorkOrderState:
    """The work order's row and SLA clocks from all its events (any order; at least one)."""
    f = _Facts.of(timeline)
    by_type = f.by_type
    latest_assignment, done = _last(by_type[ASSIGNED]), _last(by_type[COMPLETED])
    total, parts, currency = _cost(done, config)
    approval = _approval(by_type, total, config)
    downtime, down_from, down_to = _downtime(f, done)
    hold_total = sum((h.end - h.start for h in f.holds if h.end is not None), start=_ZERO)
    clocks = f.clocks(config)
    first_level = config.escalation_multipliers[0]
    row: dict[str, Any] = {
        "workorder_id": workorder_id,
        "status": f.status,
        "status_at": f.state_event["occurred_at"],
        **_request_columns(f.request),
        "site": f.site,
        **approval,
        "completed_unapproved": f.completed_at is not None
        and approval["approval_required"]
        and approval["approval_state"] != "approved",
        "assigned_at": _at(_first(by_type[ASSIGNED])),
        "engineer": latest_assignment["actor"] if latest_assignment else _engineer(by_type[STARTED]),
        "team": latest_assignment["team"] if latest_assignment else None,
        "started_at": _at(_first(by_type[STARTED])),
        "completed_at": f.completed_at,
        "closed_at": f.closed_at,
        "cancelled_at": _at(_first(by_type[CANCELLED])),
        "resolution": done["note"] if done else None,
        "labour_hours": done["labour_hours"] if done else None,
        "parts_cost": parts,
        "cost": total,
        "currency": currency,
        "cost_minor": _minor(total) if total is not None and currency == config.currency else None,
        "hold_minutes": _minutes(hold_total),
        "on_hold": bool(f.holds) and f.holds[-1].end is None,
        "down_from": down_from,
        "down_to": down_to,
        "downtime_minutes": downtime,
        "responded_at": f.responded_at,
        "resolved_at": f.resolved_at,
        "last_event_at": max(e["occurred_at"] for e in timeline),
        "event_count": len(timeline),
        "response_stop_at": clocks[0].stop if clocks else None,
        "resolution_stop_at": clocks[1].stop if clocks else None,
        "response_due_at": clocks[0].due(first_level) if clocks else None,
        "resolution_due_at": clocks[1].due(first_level) if clocks else None,
    }
    return WorkOrderState(row=row, clocks=clocks)


def _minor(amount: Decimal) -> int:
    return int((amount * 100).to_integral_value(ROUND_HALF_UP))


def _minted(request: Row | None) -> str | None:
    """The hub id minted from the identifier the request named (resolved through the crosswalk)."""
    if request is None:
        return None
    return asset_id_for(Identifier(scheme=request["asset_scheme"], value=request["asset_value"]))


def _engineer(started: Sequence[Row]) -> str | None:
    """The engineer named by the latest start, when no assignment has arrived (yet)."""
    named = [e for e in started if e["actor"] is not None]
    last = _last(named)
    return last["actor"] if last else None
