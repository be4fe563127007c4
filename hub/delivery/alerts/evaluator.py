"""`AlertService`: judge every rule on an interval, raise and clear alerts, publish the events.

One check (`check()`) per `interval_s` in `hub serve` (tests call it with their own clock). For
each rule it measures (probes), compares with the rule's thresholds and the open alert:

- condition holds, nothing open: store the alert (open), publish `ops.alert_raised`;
- open, and the measure is back past the `clear` threshold: close it, publish `ops.alert_cleared`;
- otherwise nothing: an open alert is never raised again, a closed one never cleared twice, and
  the gap between the raise and clear thresholds keeps a hovering measure from flapping.

A measure that fails (a store down) is logged and decides nothing. Event ids are uuid5 over the
alert id and the raise time, so a publish repeated after a crash is the same event.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Literal

import structlog
from sqlalchemy.exc import DBAPIError

from hub.delivery.alerts.book import Alert, AlertBook
from hub.ports import event_out_record
from schemas._base import SourceSystem
from schemas.envelope import Source
from schemas.ids import event_id_for
from schemas.ops import AlertClearedPayload, AlertRaisedPayload, OpsAlertCleared, OpsAlertRaised
from topics.catalogue import topic_for_event_type

if TYPE_CHECKING:
    from collections.abc import Sequence
    from zoneinfo import ZoneInfo

    from hub.delivery.alerts.probes import Probes
    from hub.delivery.alerts.rules import AlertRule
    from hub.ports import Clock, EventBus

logger = structlog.get_logger()

ADAPTER_VERSION = "hub/alerts/1"


@dataclass(frozen=True, slots=True)
class Verdict:
    """What one rule concluded: raise, clear or hold, with the measure and a sentence."""

    action: Literal["raise", "clear", "hold"]
    value: float | None = None
    text: str = ""


class AlertService:
    def __init__(
        self,
        rules: Sequence[AlertRule],
        probes: Probes,
        book: AlertBook,
        bus: EventBus,
        clock: Clock,
        *,
        zone: ZoneInfo,
        prefix: str = "",
        site: str = "main",
        interval_s: float = 30.0,
    ) -> None:
        self.rules = tuple(rules)
        self.book = book
        self._probes = probes
        self._bus = bus
        self._clock = clock
        self._zone = zone
        self._prefix = prefix
        self._site = site
        self._interval_s = interval_s
        self._dead_letters: deque[tuple[datetime, int]] = deque()

    def close(self) -> None:
        self._probes.close()

    async def run(self, stop: asyncio.Event) -> None:
        """Check every `interval_s` until `stop`."""
        while not stop.is_set():
            try:
                await self.check()
            except DBAPIError as exc:  # the read-model database is down: /health says so; try again
                logger.warning("alerts_check_failed", error=type(exc.orig).__name__)
            with contextlib.suppress(TimeoutError):  # the timeout is the wait itself
                await asyncio.wait_for(stop.wait(), self._interval_s)

    async def check(self) -> list[Alert]:
        """Judge every rule once; the alerts raised or cleared by this check."""
        await asyncio.to_thread(self.book.ensure_tables)
        await self._resend()
        now = self._clock.now()
        changed: list[Alert] = []
        for rule in self.rules:
            try:
                verdict = await self._judge(rule, now)
            except Exception as exc:  # noqa: BLE001 - one failing measure must not stop the others
                logger.warning(
                    "alert_rule_unmeasured", rule=rule.id, error=f"{type(exc).__name__}: {exc}"[:300]
                )
                continue
            alert = await self._apply(rule, verdict, now)
            if alert is not None:
                changed.append(alert)
        return changed

    async def _apply(self, rule: AlertRule, verdict: Verdict, now: datetime) -> Alert | None:
        alert_id = rule.id
        current = await asyncio.to_thread(self.book.open_alert, alert_id)
        if verdict.action == "raise" and current is None:
            raised = Alert(
                id=str(event_id_for(SourceSystem.HUB.value, f"alert:{alert_id}:{now.isoformat()}", "raised")),
                alert_id=alert_id,
                rule=rule.id,
                kind=rule.kind,
                severity=rule.severity,
                title=rule.title,
                text=verdict.text[:500],
                target=rule.target,
                value=verdict.value,
                threshold=rule.threshold,
                raised_at=now,
                cleared_at=None,
                cleared_text=None,
                cleared_value=None,
                raised_sent=False,
                cleared_sent=False,
            )
            if not await asyncio.to_thread(self.book.raise_alert, raised):
                return None  # another node raised it a moment ago
            logger.warning("alert_raised", alert=alert_id, kind=rule.kind, value=verdict.value)
            await self._send(raised, cleared=False)
            return raised
        if verdict.action == "clear" and current is not None:
            cleared = await asyncio.to_thread(
                self.book.clear_alert, alert_id, now, verdict.text, verdict.value
            )
            if cleared is None:
                return None
            logger.info("alert_cleared", alert=alert_id, kind=rule.kind, value=verdict.value)
            await self._send(cleared, cleared=True)
            return cleared
        return None

    async def _judge(self, rule: AlertRule, now: datetime) -> Verdict:  # noqa: PLR0911  (one branch per kind)
        p = self._probes
        if rule.kind == "channel_silent":
            return await self._silence(rule, now)
        if rule.kind == "lag":
            lag = await p.lag()
            if lag > rule.threshold:
                return Verdict(
                    "raise", lag, f"读模型落后 {lag} 条，超过 {rule.threshold:g} ({lag} records behind)"
                )
            return Verdict(
                "clear" if lag <= rule.clear else "hold", lag, f"积压已降至 {lag} 条 (lag down to {lag})"
            )
        if rule.kind == "disk_free":
            free = await p.disk_free_mb()
            if free < rule.threshold:
                return Verdict(
                    "raise", free, f"数据目录仅剩 {free} MB，低于 {rule.threshold:g} MB ({free} MB free)"
                )
            return Verdict(
                "clear" if free >= rule.clear else "hold", free, f"剩余 {free} MB ({free} MB free)"
            )
        if rule.kind == "ack_error_rate":
            errors, total = await p.ack_answers(rule.system or "his", now - timedelta(minutes=rule.minutes))
            if total < rule.min_messages:
                return Verdict("hold", None)
            rate = errors / total
            text = f"近 {rule.minutes:g} 分钟 {errors}/{total} 条应答为 AE/AR ({rate:.0%} negative ACKs)"
            if rate > rule.threshold:
                return Verdict("raise", round(rate, 4), text)
            return Verdict("clear" if rate <= rule.clear else "hold", round(rate, 4), text)
        return await self._dead_letter_growth(rule, now)

    async def _silence(self, rule: AlertRule, now: datetime) -> Verdict:
        last = await self._probes.last_received(rule.system or "", rule.transport)
        if last is None:
            return Verdict("hold")  # never connected: not a feed that stopped
        silent = (now - last).total_seconds() / 60
        if silent < rule.minutes:
            return Verdict("clear", round(silent, 1), f"{rule.target} 恢复接收 (a message arrived)")
        local = now.astimezone(self._zone)
        since = last
        if rule.window is not None:
            if not rule.window.contains(local.time()):
                return Verdict("hold", round(silent, 1))
            since = max(last, rule.window.opened(local).astimezone(last.tzinfo))  # silence within the hours
        judged = (now - since).total_seconds() / 60
        if judged >= rule.minutes:
            text = (
                f"{rule.target} 已 {round(judged, 1):g} 分钟未收到消息"
                f" (silent for {round(judged, 1):g} min, limit {rule.minutes:g})"
            )
            return Verdict("raise", round(judged, 1), text)
        return Verdict("hold", round(judged, 1))

    async def _dead_letter_growth(self, rule: AlertRule, now: datetime) -> Verdict:
        count = await self._probes.open_dead_letters()
        samples = self._dead_letters
        samples.append((now, count))
        while len(samples) > 1 and samples[1][0] <= now - timedelta(minutes=rule.minutes):
            samples.popleft()  # keep one sample at or before the window's start
        growth = count - samples[0][1]
        text = (
            f"{rule.minutes:g} 分钟内未处理死信增加 {growth} 条，共 {count} 条 (+{growth} open dead letters)"
        )
        if growth >= rule.threshold and growth > 0:
            return Verdict("raise", growth, text)
        return Verdict("clear" if growth <= rule.clear else "hold", growth, text)

    async def _resend(self) -> None:
        """Publish what a crash left stored but maybe unsent (same event ids: a repeat is a duplicate)."""
        for alert in await asyncio.to_thread(self.book.unsent):
            if not alert.raised_sent:
                await self._send(alert, cleared=False)
            if alert.cleared_at is not None and not alert.cleared_sent:
                await self._send(alert, cleared=True)

    async def _send(self, alert: Alert, *, cleared: bool) -> None:
        event = cleared_event(alert, self._site) if cleared else raised_event(alert, self._site)
        topic = topic_for_event_type(event.type).full_name(self._prefix)
        await self._bus.publish(topic, [event_out_record(event)])
        await asyncio.to_thread(self.book.mark_sent, alert.id, cleared=cleared)


def _source(alert: Alert, site: str) -> Source:
    return Source(
        system=SourceSystem.HUB,
        site=site,
        message_id=f"alert:{alert.alert_id}:{alert.raised_at.isoformat()}",
        adapter_version=ADAPTER_VERSION,
    )


def raised_event(alert: Alert, site: str) -> OpsAlertRaised:
    return OpsAlertRaised(
        event_id=alert.id,
        occurred_at=alert.raised_at,
        recorded_at=alert.raised_at,
        source=_source(alert, site),
        subject=alert.alert_id,
        correlation_id=alert.id,
        payload=AlertRaisedPayload(
            alert_id=alert.alert_id,
            rule=alert.rule,
            kind=alert.kind,
            severity=alert.severity,
            title=alert.title,
            text=alert.text,
            target=alert.target,
            value=alert.value,
            threshold=alert.threshold,
            raised_at=alert.raised_at,
        ),
    )


def cleared_event(alert: Alert, site: str) -> OpsAlertCleared:
    if alert.cleared_at is None:
        raise ValueError(f"alert {alert.id} is still open")
    return OpsAlertCleared(
        event_id=event_id_for(
            SourceSystem.HUB.value, f"alert:{alert.alert_id}:{alert.raised_at.isoformat()}", "cleared"
        ),
        occurred_at=alert.cleared_at,
        recorded_at=alert.cleared_at,
        source=_source(alert, site),
        subject=alert.alert_id,
        correlation_id=alert.id,
        causation_id=alert.id,
        payload=AlertClearedPayload(
            alert_id=alert.alert_id,
            rule=alert.rule,
            kind=alert.kind,
            severity=alert.severity,
            title=alert.title,
            text=alert.cleared_text or "cleared",
            target=alert.target,
            value=alert.cleared_value,
            raised_at=alert.raised_at,
            cleared_at=alert.cleared_at,
        ),
    )
