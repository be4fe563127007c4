"""Notification delivery: WeCom and DingTalk group robots, and a generic signed webhook.

`NotificationDelivery` reads `derived.notification.v1` (consumer group `notify-delivery`) and,
for each `notification.sent` and `notification.escalated`, posts to every channel its rule names
(projections.notifications.rules: `channels:`), then publishes `notification.delivered` per
channel (outcome delivered or failed, the HTTP status, the attempts, never the URL: it holds the
robot's key). Its id is uuid5 over (notification, channel, level), so a redelivery after a crash
republishes the same fact, not a second one. A failed post (transport error, non-2xx answer, or a
robot's `errcode` other than 0, e.g. 45009 "rate limited": robots take 20 messages a minute) is
retried after `retry_delays` (default 2 s, then 10 s); after the last one it is published as
`outcome: failed`, which the read model shows as `delivery_failed` on the notification. A target
the policy refuses is not retried. The console inbox and escalation stay the reliable path.

Each robot message ends with a one-time acknowledgement link (hub.delivery.ack_links) when the
hub has one configured: tapping it in the group chat is the read receipt, once, until it expires;
a webhook gets the same link in the `X-Hub-Ack-Url` header.

Formats, as the robot APIs document them:
- WeCom (企业微信群机器人): POST the webhook URL with `{"msgtype": "markdown", "markdown":
  {"content": ...}}` (content at most 4096 bytes UTF-8);
- DingTalk (钉钉自定义机器人): `{"msgtype": "markdown", "markdown": {"title": ..., "text": ...}}`;
  with a 加签 secret, `timestamp` (ms) and `sign` (base64 HMAC-SHA256 of "timestamp\\nsecret",
  keyed by the secret, URL-encoded) are added to the URL's query;
- webhook: the event's JSON as on the log, signed like webhook subscriptions
  (`X-Hub-Signature-256: sha256=<hex HMAC of the body>`).

Every URL goes through the webhooks' TargetPolicy (HUB_WEBHOOK_ALLOW): internal addresses only
when named there.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import json
from typing import TYPE_CHECKING, Any
from urllib.parse import quote_plus, urlsplit, urlunsplit

import httpx
import structlog

from hub.delivery.webhooks.rules import signature
from hub.ports import event_out_record
from schemas._base import SourceSystem
from schemas.catalogue import dump_event, parse_event
from schemas.envelope import Source
from schemas.ids import event_id_for
from schemas.notifications import (
    NotificationDelivered,
    NotificationDeliveredPayload,
    NotificationEscalated,
    NotificationSent,
)
from topics.catalogue import BY_NAME

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Sequence
    from datetime import datetime

    from hub.delivery.ack_links import AckLinks
    from hub.delivery.webhooks.targets import TargetPolicy
    from hub.ports import Clock, Consumer, EventBus
    from projections.notifications.rules import Channel, NotificationRules

logger = structlog.get_logger()

TOPIC = "derived.notification.v1"
GROUP = "notify-delivery"
WECOM_MAX_BYTES = 4096
TIMEOUT_S = 10.0
RETRY_DELAYS_S = (2.0, 10.0)  # waits before the 2nd and 3rd post of a failed delivery


def _clip(text: str, max_bytes: int) -> str:
    raw = text.encode()
    return text if len(raw) <= max_bytes else raw[: max_bytes - 3].decode(errors="ignore") + "..."


def markdown(title: str, text: str, level: int) -> str:
    head = f"### {title}" if level == 0 else f"### 【升级 {level}】{title}"
    return f"{head}\n{text}"


def wecom_payload(title: str, text: str, level: int = 0) -> dict[str, Any]:
    """A WeCom group-robot markdown message."""
    return {
        "msgtype": "markdown",
        "markdown": {"content": _clip(markdown(title, text, level), WECOM_MAX_BYTES)},
    }


def dingtalk_payload(title: str, text: str, level: int = 0) -> dict[str, Any]:
    """A DingTalk custom-robot markdown message."""
    return {"msgtype": "markdown", "markdown": {"title": title, "text": markdown(title, text, level)}}


def dingtalk_sign(secret: str, timestamp_ms: int) -> str:
    """DingTalk 加签: URL-encoded base64 of HMAC-SHA256("timestamp\\nsecret") keyed by the secret."""
    digest = hmac.new(secret.encode(), f"{timestamp_ms}\n{secret}".encode(), hashlib.sha256).digest()
    return quote_plus(base64.b64encode(digest).decode())


def dingtalk_url(url: str, secret: str | None, timestamp_ms: int) -> str:
    if not secret:
        return url
    parts = urlsplit(url)
    extra = f"timestamp={timestamp_ms}&sign={dingtalk_sign(secret, timestamp_ms)}"
    query = f"{parts.query}&{extra}" if parts.query else extra
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, parts.fragment))


def request_for(
    channel: Channel, event: NotificationSent | NotificationEscalated, title: str, text: str, now: datetime
) -> tuple[str, bytes, dict[str, str]]:
    """(URL, body, headers) of one channel's post of one notification event."""
    level = event.payload.level if isinstance(event, NotificationEscalated) else 0
    headers = {"Content-Type": "application/json; charset=utf-8"}
    if channel.kind == "wecom":
        body = json.dumps(wecom_payload(title, text, level), ensure_ascii=False).encode()
        return channel.url, body, headers
    if channel.kind == "dingtalk":
        body = json.dumps(dingtalk_payload(title, text, level), ensure_ascii=False).encode()
        return dingtalk_url(channel.url, channel.secret, int(now.timestamp() * 1000)), body, headers
    body = dump_event(event)
    headers |= {"X-Hub-Event-Type": event.type, "X-Hub-Event-Id": str(event.event_id)}
    if channel.secret:
        headers["X-Hub-Signature-256"] = signature(channel.secret, body)
    return channel.url, body, headers


class NotificationDelivery:
    """Posts notifications to their rules' channels (see the module docstring)."""

    def __init__(
        self,
        rules: NotificationRules,
        bus: EventBus,
        clock: Clock,
        *,
        prefix: str = "",
        site: str = "hub",
        targets: TargetPolicy | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        retry_delays: Sequence[float] = RETRY_DELAYS_S,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        ack_links: AckLinks | None = None,
    ) -> None:
        self.retry_delays = tuple(retry_delays)
        self.sleep = sleep
        self.ack_links = ack_links
        self.rules = rules
        self.bus = bus
        self.clock = clock
        self.prefix = prefix
        self.site = site
        self.targets = targets
        self.transport = transport

    async def deliver(self, event: NotificationSent | NotificationEscalated) -> list[NotificationDelivered]:
        """Post `event` to each of its channels; the `notification.delivered` facts (not yet published)."""
        nid = event.payload.notification_id
        title = event.payload.title or f"通知 {nid} 未读"
        text = event.payload.text or "请在控制台查看并确认。"
        level = event.payload.level if isinstance(event, NotificationEscalated) else 0
        out: list[NotificationDelivered] = []
        async with httpx.AsyncClient(
            transport=self.transport, timeout=TIMEOUT_S, follow_redirects=False
        ) as client:
            for name in event.payload.channels:
                channel = self.rules.channels.get(name)
                if channel is None:
                    continue  # the rule changed since: the channel is gone
                status, error, attempts = await self._post_retrying(
                    client, name, channel, event, title=title, text=text
                )
                out.append(self._delivered(event, name, level, status, error, attempts=attempts))
        return out

    async def _post_retrying(
        self, client: httpx.AsyncClient, name: str, channel: Channel, event: Any, *, title: str, text: str
    ) -> tuple[int | None, str | None, int]:
        """Post, and again after each of `retry_delays` while it fails: (status, error, attempts)."""
        level = event.payload.level if isinstance(event, NotificationEscalated) else 0
        ack_url = None
        if self.ack_links is not None and channel.kind in {"wecom", "dingtalk", "webhook"}:
            ack_url = self.ack_links.mint(event.payload.notification_id, name, level, self.clock.now())
        attempts = 0
        while True:
            attempts += 1
            status, error, retry = await self._post(
                client, channel, event, title=title, text=text, ack_url=ack_url
            )
            if error is None or not retry or attempts > len(self.retry_delays):
                return status, error, attempts
            delay = self.retry_delays[attempts - 1]
            logger.info("notification_post_retry", channel=name, attempt=attempts, error=error, delay_s=delay)
            await self.sleep(delay)

    async def _post(
        self,
        client: httpx.AsyncClient,
        channel: Channel,
        event: Any,
        *,
        title: str,
        text: str,
        ack_url: str | None = None,
    ) -> tuple[int | None, str | None, bool]:
        """One post: (status, error or None, whether a failure is worth retrying)."""
        if ack_url is not None and channel.kind != "webhook":
            text = f"{text}\n\n[确认已读]({ack_url})"
        url, body, headers = request_for(channel, event, title, text, self.clock.now())
        if ack_url is not None and channel.kind == "webhook":
            headers["X-Hub-Ack-Url"] = ack_url
        refused = await self.targets.refusal(url) if self.targets is not None else None
        if refused is not None:
            return None, f"target refused: {refused}"[:500], False
        try:
            response = await client.post(url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            return None, f"{type(exc).__name__}", True
        if not response.is_success:
            return response.status_code, f"HTTP {response.status_code}", True
        # The robots answer 200 with {"errcode": N, "errmsg": ...}: non-zero is a refusal.
        try:
            answer = response.json()
        except ValueError:
            answer = {}
        if isinstance(answer, dict) and answer.get("errcode") not in (None, 0):
            error = f"errcode {answer.get('errcode')}: {str(answer.get('errmsg'))[:200]}"
            return response.status_code, error, True
        return response.status_code, None, False

    def _delivered(
        self,
        event: Any,
        channel: str,
        level: int,
        status: int | None,
        error: str | None,
        *,
        attempts: int = 1,
    ) -> NotificationDelivered:
        nid = event.payload.notification_id
        key = f"notification.delivered:{nid}:{channel}"
        now = self.clock.now()
        return NotificationDelivered(
            event_id=event_id_for(SourceSystem.HUB.value, key, level),
            occurred_at=now,
            recorded_at=now,
            source=Source(
                system=SourceSystem.HUB, site=self.site, message_id=key, adapter_version="hub/notify/1"
            ),
            subject=nid,
            correlation_id=event.correlation_id,
            causation_id=str(event.event_id),
            payload=NotificationDeliveredPayload(
                notification_id=nid,
                channel=channel,
                level=level,
                outcome="failed" if error else "delivered",
                status_code=status,
                error=error,
                attempts=attempts,
            ),
        )

    async def _consumer(self) -> Consumer:
        topic = BY_NAME[TOPIC].full_name(self.prefix)
        return await self.bus.consumer([topic], group=GROUP, from_beginning=True, client_id=GROUP)

    async def _deliver_batch(self, consumer: Consumer, timeout_s: float) -> int | None:
        """Deliver one polled batch and commit it: how many were posted, None when nothing came."""
        batch = await consumer.poll(max_records=100, timeout_s=timeout_s)
        if not batch:
            return None
        topic = BY_NAME[TOPIC].full_name(self.prefix)
        done = 0
        for record in batch:
            event = parse_event(record.value)
            if isinstance(event, NotificationSent | NotificationEscalated) and event.payload.channels:
                facts = await self.deliver(event)
                if facts:
                    await self.bus.publish(topic, [event_out_record(f) for f in facts])
                done += 1
        await consumer.commit()
        return done

    async def run_until_idle(self, *, timeout_s: float = 0.2) -> int:
        """Deliver what is on the topic past the group's committed offsets; how many events were posted."""
        consumer = await self._consumer()
        done = 0
        try:
            while (posted := await self._deliver_batch(consumer, timeout_s)) is not None:
                done += posted
            return done
        finally:
            await consumer.close()

    async def run(self, stop: asyncio.Event, *, every_s: float = 1.0) -> None:
        """`hub serve`: deliver until `stop` (at least once: offsets commit after each batch).

        One group member for the whole run: joining and leaving the group at each idle round
        would rebalance it every round (seconds each on Kafka) and log every join."""
        while not stop.is_set():
            try:
                consumer = await self._consumer()
                try:
                    while not stop.is_set():
                        await self._deliver_batch(consumer, every_s)
                finally:
                    await consumer.close()
            except Exception:  # a bus hiccup must not end delivery; it starts again from the commit
                logger.exception("notification_delivery_failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=every_s)
