"""SLA breaches: which escalation levels a work order's clocks have reached, and the derived events.

A level is reached when its due time (target x multiplier, shifted by time on hold when that is
excluded) is not after the moment we judge at: the clock's stop when it stopped (an answer or a
completion at exactly the due time is late: the target is the last instant still on time), else
`at`. `apply` judges at the newest `occurred_at` of the work order's events (an event proves the
order was still open then: no wall clock involved, so replays conclude the same); `tick` judges
at the runner clock's `now`.

Each (work order, kind, level) is concluded once: its event id is uuid5 over that triple, and
the `work_orders_breaches` row keeps later applies and ticks from concluding it again.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from schemas._base import SourceSystem
from schemas.derived import SlaBreachedPayload, WorkOrderSlaBreached
from schemas.envelope import Source
from schemas.ids import event_id_for

if TYPE_CHECKING:
    from collections.abc import Collection, Sequence
    from datetime import datetime

    from projections.work_orders.lifecycle import ClockKind, SlaClock

ADAPTER_VERSION = "hub/work_orders/1"


@dataclass(frozen=True, slots=True)
class Breach:
    """One escalation level of one clock, and when it fell due."""

    kind: ClockKind
    level: int
    due_at: datetime


def reached(clock: SlaClock, multipliers: Sequence[float], at: datetime | None) -> list[Breach]:
    """Every level of `clock` reached when judged at `at` (or at its stop, when stopped)."""
    limit = clock.stop if clock.stop is not None else at
    out: list[Breach] = []
    if limit is None:
        return out
    for level, multiplier in enumerate(multipliers, start=1):
        due = clock.due(multiplier)
        if due is None or limit < due:
            break  # due times grow with the level: no higher level can be reached either
        out.append(Breach(clock.kind, level, due))
    return out


def next_due(clock: SlaClock, multipliers: Sequence[float], concluded: Collection[int]) -> datetime | None:
    """When the lowest level not yet concluded falls due on a running clock (None: nothing to watch)."""
    if clock.stop is not None:
        return None  # a stopped clock's breaches are all concluded when the stop is applied
    for level, multiplier in enumerate(multipliers, start=1):
        if level not in concluded:
            return clock.due(multiplier)
    return None


def breach_event(
    workorder_id: str,
    breach: Breach,
    *,
    site: str,
    causation_id: str | None,
    recorded_at: datetime,
) -> WorkOrderSlaBreached:
    """`workorder.sla_breached` with a deterministic id: the same breach always gets the same id."""
    key = f"workorder.sla_breached:{workorder_id}:{breach.kind}"
    return WorkOrderSlaBreached(
        event_id=event_id_for(SourceSystem.HUB.value, key, breach.level),
        occurred_at=breach.due_at,
        recorded_at=recorded_at,
        source=Source(system=SourceSystem.HUB, site=site, message_id=key, adapter_version=ADAPTER_VERSION),
        subject=workorder_id,
        correlation_id=workorder_id,
        causation_id=causation_id,
        payload=SlaBreachedPayload(
            workorder_id=workorder_id,
            kind=breach.kind,
            due_at=breach.due_at,
            escalation_level=breach.level,
        ),
    )
