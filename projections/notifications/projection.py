"""Read model `notifications`: events -> notifications by rule, read receipts, escalation by time.

Fed by the derived topics (SLA breaches, compliance due/overdue, below minimum, the hub's own
operational alerts, energy anomalies with the department of their zone), the asset and inventory
topics (a device stopped, a recall; departments of devices) and the work-order topic (departments
of work orders), and `canonical.notification.v1` (read receipts).

- A rule (projections.notifications.rules) that matches an event makes one notification whose id
  is uuid5 over (rule, event id): a replay, a redelivery or a rebuild never notifies twice.
- De-duplication: an event whose rule already notified the same `dedup` key within the window
  (by the events' own times) makes no notification.
- Quiet hours (site time): a non-urgent notification raised inside them is held until they
  end; `notification.sent` is concluded then, on the tick after `deliver_at`.
- Escalation: `tick(now)` concludes `notification.escalated` level n when the notification is
  still unread `escalate[n-1].after` after sending, and `notification.expired` when it is unread
  past `expire_after` (no escalation after that). Each has a deterministic id (uuid5 over
  notification + level), and the row's level keeps later ticks from concluding it again.
- `max_age`: an event recorded that long after it occurred (a history import) notifies nobody.
- A read receipt (`notification.read`) stops escalation; receipts are kept per event, so one
  that arrives before its notification (another partition) still counts.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any
from uuid import NAMESPACE_URL, uuid5

from sqlalchemy import select, update

from projections.notifications.rules import NotificationRules, Rule, load_rules, render, template_fields
from projections.notifications.tables import (
    METADATA,
    NAME,
    asset_departments,
    deliveries,
    notifications,
    receipts,
    recipients,
    workorder_departments,
)
from projections.runtime.upsert import upsert
from schemas._base import SourceSystem
from schemas.assets import AssetCommissioned, AssetRegistered, AssetRelocated
from schemas.derived import InventoryBelowMinimum
from schemas.envelope import Source
from schemas.facility import FacilityAnomalyCleared, FacilityAnomalyDetected
from schemas.ids import event_id_for
from schemas.inventory import InventoryDisposed
from schemas.notifications import (
    NotificationDelivered,
    NotificationEscalated,
    NotificationEscalatedPayload,
    NotificationExpired,
    NotificationExpiredPayload,
    NotificationRead,
    NotificationSent,
    NotificationSentPayload,
    Recipient,
)
from schemas.telemetry import AssetEarlyWarning, AssetEarlyWarningCleared
from schemas.work_orders import WorkOrderRequestCorrected, WorkOrderRequested

if TYPE_CHECKING:
    from collections.abc import Sequence

    from sqlalchemy import Connection

    from schemas.catalogue import Event
    from schemas.envelope import EventBase

TOPICS = (
    "derived.workorder.v1",
    "derived.compliance.v1",
    "derived.inventory.v1",
    "derived.ops.v1",  # operational alerts (ops.alert_raised / ops.alert_cleared) a rule may route
    "derived.facility.v1",
    "derived.asset.v1",  # early warnings from device telemetry (and identity conflicts)
    "canonical.asset.v1",
    "canonical.inventory.v1",
    "canonical.workorder.v1",
    "canonical.notification.v1",
    "derived.notification.v1",  # the delivery service's `notification.delivered`: per-channel outcome
)
ADAPTER_VERSION = "hub/notifications/1"
DEDUP_KEY_MAX = 400
NOTIFICATION_NAMESPACE = uuid5(NAMESPACE_URL, "hub:notifications")  # fixed: ids must never change


def notification_id_for(rule_id: str, event_id: str) -> str:
    """The one id a rule's notification of an event can have."""
    return "NTF-" + uuid5(NOTIFICATION_NAMESPACE, f"{rule_id}\x1f{event_id}").hex[:24]


class Notifications:
    """The notifications projection (see the module docstring)."""

    name = NAME
    topics = TOPICS
    metadata = METADATA

    def __init__(self, rules: NotificationRules | None = None, *, site: str = "hub") -> None:
        self.rules = rules if rules is not None else load_rules()
        self.site = site

    # -- apply ---------------------------------------------------------------------------

    def apply(self, conn: Connection, events: Sequence[Event]) -> list[EventBase]:
        # Departments and receipts are keyed rows written once per batch (imports bring thousands);
        # rules see the table state of earlier events in the batch, so they fire one event at a time.
        assets: dict[str, dict[str, Any]] = {}
        orders: dict[str, dict[str, Any]] = {}
        reads: dict[str, dict[str, Any]] = {}
        posted: dict[tuple[str, str, int], dict[str, Any]] = {}
        derived: list[EventBase] = []
        fixed: dict[str, dict[str, Any]] = {}  # work orders whose request was corrected
        for event in events:
            if isinstance(event, WorkOrderRequestCorrected):
                reporter = event.payload.request.reporting_department
                fixed[event.subject] = orders[event.subject] = {
                    "workorder_id": event.subject, "dept_code": reporter.code, "dept_name": reporter.name
                }  # fmt: skip
            _lookups(event, assets, orders)
            if isinstance(event, NotificationDelivered):
                d = event.payload
                posted[(d.notification_id, d.channel, d.level)] = {
                    "notification_id": d.notification_id,
                    "channel": d.channel,
                    "level": d.level,
                    "outcome": d.outcome,
                    "attempts": d.attempts,
                    "status_code": d.status_code,
                    "error": d.error,
                    "at": event.occurred_at,
                }
                continue
            if isinstance(event, NotificationRead):
                p = event.payload
                reads[str(event.event_id)] = {
                    "event_id": str(event.event_id),
                    "notification_id": p.notification_id,
                    "key_id": p.key_id,
                    "reader": p.reader,
                    "role": p.role,
                    "read_at": event.occurred_at,
                }
                continue
            for rule in self.rules.for_type(event.type):
                sent = self._fire(conn, rule, event)
                if sent is not None:
                    derived.append(sent)
        # In key order: each page of the key is visited once per batch (event ids are random).
        upsert(conn, asset_departments, [assets[k] for k in sorted(assets)], key=("event_id",), update=False)
        upsert(conn, workorder_departments, list(orders.values()), key=("workorder_id",), update=False)
        upsert(conn, workorder_departments, list(fixed.values()), key=("workorder_id",))
        upsert(conn, receipts, list(reads.values()), key=("event_id",), update=False)
        upsert(conn, deliveries, list(posted.values()), key=("notification_id", "channel", "level"))
        return derived

    def _fire(self, conn: Connection, rule: Rule, event: Event) -> EventBase | None:
        zone = self.rules.zone
        local = event.occurred_at.astimezone(zone)
        fields = template_fields(
            event.payload,
            subject=event.subject,
            event_type=event.type,
            occurred=local.strftime("%Y-%m-%d %H:%M"),
        )
        if not rule.matches(event.type, fields):
            return None
        if rule.max_age is not None and event.recorded_at - event.occurred_at >= rule.max_age:
            return None  # old news (a history import, a late export): the hub's own times, no wall clock
        nid = notification_id_for(rule.id, str(event.event_id))
        n = notifications.c
        if conn.execute(select(n.notification_id).where(n.notification_id == nid)).first():
            return None  # this event already notified (a replay, or the same event at a new offset)
        dedup_key = f"{rule.id}\x1f{render(rule.dedup_key, fields)}"
        if len(dedup_key) > DEDUP_KEY_MAX:  # the column's width: a long key is kept as its digest
            dedup_key = f"{rule.id}\x1fsha256:{hashlib.sha256(dedup_key.encode()).hexdigest()}"
        if rule.dedup_window > timedelta(0):
            earlier = select(n.notification_id).where(
                n.dedup_key == dedup_key,
                n.occurred_at > event.occurred_at - rule.dedup_window,
                n.occurred_at < event.occurred_at + rule.dedup_window,
            )
            if conn.execute(earlier).first():
                return None
        deliver_at = event.occurred_at
        if rule.quiet_hours is not None and not rule.urgent and rule.quiet_hours.contains(local.time()):
            deliver_at = _quiet_end(local, rule)
        held = deliver_at > event.occurred_at
        asset_id, workorder_id, dept_code, dept_name = _subject_of(event)
        upsert(
            conn,
            notifications,
            [
                {
                    "notification_id": nid,
                    "rule": rule.id,
                    "trigger_event_id": str(event.event_id),
                    "trigger_type": event.type,
                    "subject": event.subject,
                    "asset_id": asset_id,
                    "workorder_id": workorder_id,
                    "dept_code": dept_code,
                    "dept_name": dept_name,
                    "title": render(rule.title, fields),
                    "text": render(rule.text, fields),
                    "channels": " ".join(rule.channels),
                    "urgent": rule.urgent,
                    "dedup_key": dedup_key,
                    "occurred_at": event.occurred_at,
                    "deliver_at": deliver_at,
                    "sent_at": None if held else event.occurred_at,
                    "level": 0,
                    "escalated_at": None,
                    "expired_at": None,
                }
            ],
            key=("notification_id",),
            update=False,
        )
        _store_recipients(conn, nid, 0, rule.to)
        if held:
            return None
        return self._sent(conn, nid, rule, recorded_at=event.recorded_at)

    def _sent(self, conn: Connection, nid: str, rule: Rule, *, recorded_at: datetime) -> EventBase:
        row = (
            conn.execute(select(notifications).where(notifications.c.notification_id == nid)).mappings().one()
        )
        return NotificationSent(
            event_id=event_id_for(SourceSystem.HUB.value, f"notification.sent:{nid}", 0),
            occurred_at=row["deliver_at"],
            recorded_at=recorded_at,
            source=self._source(f"notification.sent:{nid}"),
            subject=nid,
            correlation_id=row["subject"],
            causation_id=row["trigger_event_id"],
            payload=NotificationSentPayload(
                notification_id=nid,
                rule=rule.id,
                trigger_event_id=row["trigger_event_id"],
                trigger_type=row["trigger_type"],
                title=row["title"],
                text=row["text"],
                recipients=list(rule.to),
                channels=list(rule.channels),
                urgent=rule.urgent,
            ),
        )

    def _source(self, key: str) -> Source:
        return Source(
            system=SourceSystem.HUB, site=self.site, message_id=key, adapter_version=ADAPTER_VERSION
        )

    # -- tick ----------------------------------------------------------------------------

    def tick(self, conn: Connection, now: datetime) -> list[EventBase]:
        """Send what quiet hours held, escalate what is unread past its next step, expire the rest."""
        n = notifications.c
        out: list[EventBase] = []
        by_id = {r.id: r for r in self.rules.rules}
        held = conn.execute(
            select(n.notification_id, n.rule).where(n.sent_at.is_(None), n.deliver_at <= now)
        ).all()
        for nid, rule_id in held:
            rule = by_id.get(rule_id)
            if rule is None:
                continue  # the rule was removed: nothing to send it by
            conn.execute(update(notifications).where(n.notification_id == nid).values(sent_at=now))
            out.append(self._sent(conn, nid, rule, recorded_at=now))
        open_ = conn.execute(
            select(n.notification_id, n.rule, n.subject, n.deliver_at, n.level, n.title, n.text).where(
                n.sent_at.is_not(None),
                n.expired_at.is_(None),
                n.notification_id.not_in(select(receipts.c.notification_id)),
            )
        ).all()
        for nid, rule_id, subject, deliver_at, level, title, text in open_:
            rule = by_id.get(rule_id)
            if rule is None:
                continue
            if rule.expire_after is not None and now >= deliver_at + rule.expire_after:
                conn.execute(update(notifications).where(n.notification_id == nid).values(expired_at=now))
                out.append(
                    NotificationExpired(
                        event_id=event_id_for(SourceSystem.HUB.value, f"notification.expired:{nid}", 0),
                        occurred_at=deliver_at + rule.expire_after,
                        recorded_at=now,
                        source=self._source(f"notification.expired:{nid}"),
                        subject=nid,
                        correlation_id=subject,
                        payload=NotificationExpiredPayload(notification_id=nid, rule=rule_id, level=level),
                    )
                )
                continue
            reached = level
            for step_no, step in enumerate(rule.escalate, start=1):
                if step_no <= level or now < deliver_at + step.after:
                    continue
                reached = step_no
                _store_recipients(conn, nid, step_no, step.to)
                out.append(
                    NotificationEscalated(
                        event_id=event_id_for(
                            SourceSystem.HUB.value, f"notification.escalated:{nid}", step_no
                        ),
                        occurred_at=deliver_at + step.after,
                        recorded_at=now,
                        source=self._source(f"notification.escalated:{nid}"),
                        subject=nid,
                        correlation_id=subject,
                        payload=NotificationEscalatedPayload(
                            notification_id=nid,
                            rule=rule_id,
                            level=step_no,
                            recipients=list(step.to),
                            channels=list(rule.channels),
                            unread_since=deliver_at,
                            title=title,
                            text=text,
                        ),
                    )
                )
            if reached > level:
                conn.execute(
                    update(notifications)
                    .where(n.notification_id == nid)
                    .values(level=reached, escalated_at=now)
                )
        return out


def _lookups(event: Event, assets: dict[str, dict[str, Any]], orders: dict[str, dict[str, Any]]) -> None:
    """Departments of devices and work orders, so a notification's department is known when read."""
    dept = None
    if isinstance(event, AssetRegistered):
        dept = event.payload.details.department
    elif isinstance(event, AssetRelocated):
        dept = event.payload.to.department
    elif isinstance(event, AssetCommissioned):
        dept = event.payload.department
    elif isinstance(event, WorkOrderRequested):
        d = event.payload.reporting_department
        orders.setdefault(
            event.subject, {"workorder_id": event.subject, "dept_code": d.code, "dept_name": d.name}
        )
        return
    if dept is not None and (dept.code or dept.name):
        event_id = str(event.event_id)  # once: UUID.__str__ is not free
        assets[event_id] = {
            "event_id": event_id,
            "asset_id": event.subject,
            "occurred_at": event.occurred_at,
            "dept_code": dept.code,
            "dept_name": dept.name,
        }


def _quiet_end(local: datetime, rule: Rule) -> datetime:
    """The first instant after `local` at which the rule's quiet hours end (site time)."""
    quiet = rule.quiet_hours
    if quiet is None:
        return local
    end = local.replace(hour=quiet.end.hour, minute=quiet.end.minute, second=0, microsecond=0)
    if end <= local:
        end += timedelta(days=1)
    return end


def _subject_of(event: Event) -> tuple[str | None, str | None, str | None, str | None]:
    """(asset id, work-order id, department code, department name) the event is about."""
    payload: Any = event.payload
    if isinstance(event, InventoryBelowMinimum | InventoryDisposed):
        d = payload.location.department
        return None, None, d.code, d.name
    if isinstance(event, FacilityAnomalyDetected | FacilityAnomalyCleared):
        d = payload.department
        return None, None, d and d.code, d and d.name
    if isinstance(event, AssetEarlyWarning | AssetEarlyWarningCleared) and payload.department is not None:
        d = payload.department
        return payload.asset_id, None, d.code, d.name
    if event.type.startswith("workorder."):
        return None, getattr(payload, "workorder_id", None) or event.subject, None, None
    return getattr(payload, "asset_id", None) or event.subject, None, None, None


def _store_recipients(conn: Connection, nid: str, level: int, to: Sequence[Recipient]) -> None:
    rows = [{"notification_id": nid, "level": level, "kind": r.kind, "value": r.value} for r in to]
    upsert(conn, recipients, rows, key=("notification_id", "level", "kind", "value"), update=False)
