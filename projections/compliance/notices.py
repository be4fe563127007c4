"""Derived events of the compliance projection, each concluded once per asset x kind x due date.

- `compliance.due`: the due window opened (due date - `due_within_days`) and the date is not past.
  An obligation first seen already overdue gets `compliance.overdue` only.
- `compliance.overdue`: the site's date is after the due date (the due date itself is the last
  day in time: a certificate valid until 5 June is overdue on 6 June).
- `workorder.scheduled`: for the configured kinds, a maintenance task once the window opens,
  overdue or not; its subject is a work-order id minted from (asset, kind, due date).

Ids are uuid5 over (notice, asset, kind, due date); `occurred_at` is the start of the day the
fact became true, in the site's time zone, so a tick on any later day concludes the same event.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any

from schemas._base import SourceSystem
from schemas.derived import (
    ComplianceDue,
    ComplianceDuePayload,
    ComplianceOverdue,
    WorkOrderScheduled,
    WorkOrderScheduledPayload,
)
from schemas.envelope import Source
from schemas.ids import event_id_for, workorder_id_for

if TYPE_CHECKING:
    from collections.abc import Mapping

    from projections.compliance.rules import ComplianceConfig
    from schemas.envelope import EventBase

ADAPTER_VERSION = "hub/compliance/1"


@dataclass(frozen=True, slots=True)
class Notice:
    """One derived event to conclude for an item, and the flag it sets."""

    notice: str  # due | overdue | scheduled
    event: EventBase


def _start_of(day: date, config: ComplianceConfig) -> datetime:
    return datetime.combine(day, time(0), tzinfo=config.zone).astimezone(UTC)


def due_notices(
    item: Mapping[str, Any], today: date, config: ComplianceConfig, *, now: datetime
) -> list[Notice]:
    """The notices `item` calls for on `today` that its flags say were not concluded yet."""
    due_on: date = item["due_on"]
    opens = due_on - timedelta(days=config.due_within_days)
    out: list[Notice] = []
    if today < opens:
        return out
    overdue = today > due_on
    if overdue and not item["overdue_notice"]:
        out.append(
            Notice("overdue", _event(ComplianceOverdue, item, due_on + timedelta(days=1), config, now))
        )
    elif not overdue and not item["due_notice"]:
        out.append(Notice("due", _event(ComplianceDue, item, opens, config, now)))
    if item["kind"] in config.schedule_kinds and not item["scheduled"]:
        out.append(Notice("scheduled", _scheduled(item, opens, config, now)))
    return out


def _source(key: str, item: Mapping[str, Any]) -> Source:
    return Source(system=SourceSystem.HUB, site=item["site"], message_id=key, adapter_version=ADAPTER_VERSION)


def _event(
    cls: type[ComplianceDue | ComplianceOverdue],
    item: Mapping[str, Any],
    day: date,
    config: ComplianceConfig,
    now: datetime,
) -> EventBase:
    notice = cls.model_fields["type"].default
    key = f"{notice}:{item['asset_id']}:{item['kind']}"
    return cls(
        event_id=event_id_for(SourceSystem.HUB.value, key, item["due_on"].isoformat()),
        occurred_at=_start_of(day, config),
        recorded_at=now,
        source=_source(key, item),
        subject=item["asset_id"],
        causation_id=item["cause_event_id"],
        payload=ComplianceDuePayload(asset_id=item["asset_id"], kind=item["kind"], due_on=item["due_on"]),
    )


def _scheduled(item: Mapping[str, Any], day: date, config: ComplianceConfig, now: datetime) -> EventBase:
    key = f"workorder.scheduled:{item['asset_id']}:{item['kind']}"
    due_on: date = item["due_on"]
    return WorkOrderScheduled(
        event_id=event_id_for(SourceSystem.HUB.value, key, due_on.isoformat()),
        occurred_at=_start_of(day, config),
        recorded_at=now,
        source=_source(key, item),
        subject=workorder_id_for(SourceSystem.HUB.value, f"{item['asset_id']}|{item['kind']}|{due_on}"),
        correlation_id=item["asset_id"],
        causation_id=item["cause_event_id"],
        payload=WorkOrderScheduledPayload(asset_id=item["asset_id"], kind=item["kind"], due_on=due_on),
    )
