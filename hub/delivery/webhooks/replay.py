"""Replay: deliver a subscription's events again, from a chosen time up to the moment it was asked.

`POST /subscriptions/{id}/replay?from=T` fixes, per partition of the subscription's topics, the
first offset whose record time (the event's `recorded_at`) is at or after T and the end of the
log at that moment (`replay_positions`); the job is stored (hub_webhook_replays) and a
`WebhookService` node runs it (`run_replay`) beside the live delivery, which goes on untouched.
Every event of the range whose time is >= T and whose type the subscription wants is POSTed once
more, in order per partition, with `X-Hub-Replay: <replay id>`, retried with the same backoff
until accepted; progress is saved per batch, so a restart continues the replay where it stood.
A replay never reaches before the subscription was created (its start offsets).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING

import structlog

from hub.delivery.webhooks.delivery import Signer, Tuning, send_event
from hub.delivery.webhooks.log import AttemptRow, DeliveryLog, Positions, Replay
from hub.delivery.webhooks.rules import TypeFilter
from hub.errors import ArchiveError, BusError

if TYPE_CHECKING:
    from datetime import datetime

    import httpx

    from hub.delivery.webhooks.store import Subscription, SubscriptionStore
    from hub.delivery.webhooks.targets import TargetPolicy
    from hub.ports import BusRecord, Clock, EventBus

logger = structlog.get_logger()

MAX_EMPTY_POLLS = 50  # a range whose records no longer come back (retention) fails instead of hanging


async def replay_positions(bus: EventBus, sub: Subscription, prefix: str, from_time: datetime) -> Positions:
    """Per partition, [first offset at or after `from_time`, end of the log now], never before the
    subscription's own start."""
    full = {f"{prefix}{t}": t for t in sub.topics}
    consumer = await bus.consumer(
        list(full), group=None, from_beginning=True, client_id=f"{sub.group}.replay"
    )
    try:
        await consumer.seek_to_timestamp(int(from_time.timestamp() * 1000))
        for _ in range(20):  # the log may grow between reading the ends and the lag: read again
            before = {t: await bus.end_offsets(t) for t in full}
            lag = await consumer.lag()
            after = {t: await bus.end_offsets(t) for t in full}
            if before == after:
                break
        else:
            raise BusError("the log kept growing while the replay's range was read; try again")
    finally:
        await consumer.close()
    positions: Positions = {}
    for (topic, partition), behind in lag.items():
        end = before[topic].get(partition, 0)
        first = max(end - behind, sub.start(full[topic], partition))
        positions.setdefault(full[topic], {})[str(partition)] = [min(first, end), end]
    return positions


@dataclass
class ReplayRun:
    """One replay being delivered by this node (see the module docstring)."""

    replay: Replay
    sub: Subscription
    bus: EventBus
    store: SubscriptionStore
    log: DeliveryLog
    client: httpx.AsyncClient
    clock: Clock
    prefix: str
    tuning: Tuning
    owner: str
    stop: asyncio.Event
    targets: TargetPolicy | None = None
    delivered: int = 0
    rng: random.Random = field(default_factory=random.Random)  # nosec B311: jitter, not a secret

    async def run(self) -> None:
        """Deliver the range; returns when done, failed or stopped."""
        replay, sub = self.replay, self.sub
        positions = {t: {p: list(v) for p, v in parts.items()} for t, parts in replay.positions.items()}
        self.delivered = replay.delivered
        short = {f"{self.prefix}{t}": t for t in positions}
        consumer = await self.bus.consumer(
            list(short), group=None, from_beginning=True, client_id=f"{sub.group}.replay"
        )
        bound = logger.bind(subscription=sub.id, replay=replay.id, owner=self.owner)
        bound.info("webhook_replay_started", from_time=replay.from_time.isoformat())
        try:
            for topic, parts in positions.items():
                for partition, (nxt, _end) in parts.items():
                    await consumer.seek((f"{self.prefix}{topic}", int(partition)), nxt)
            empty = 0
            while _open(positions) and not self.stop.is_set():
                records = await consumer.poll(max_records=self.tuning.batch, timeout_s=self.tuning.poll_s)
                empty = 0 if records else empty + 1
                if empty > MAX_EMPTY_POLLS:
                    _gone()
                rows: list[AttemptRow] = []
                for record in records:
                    slot = positions[short[record.topic]].get(str(record.partition))
                    if slot is None or record.offset < slot[0] or record.offset >= slot[1]:
                        continue  # done already, or past the range's end (the live worker has it)
                    if self._wanted(record) and not await self._deliver(record, rows):
                        break  # stopping
                    slot[0] = record.offset + 1
                await asyncio.to_thread(self.log.record, rows)
                lease = timedelta(seconds=self.tuning.replay_lease_s)
                await asyncio.to_thread(
                    self.log.progress, replay.id, positions, self.delivered, self.clock.now(), lease
                )
            if not _open(positions):
                bound.info("webhook_replay_finished", delivered=self.delivered)
        except (BusError, ArchiveError) as exc:
            bound.exception("webhook_replay_failed")
            error = f"{type(exc).__name__}: {exc}"
            await asyncio.to_thread(self.log.fail_replay, replay.id, error, self.clock.now())
        finally:
            await consumer.close()

    def _wanted(self, record: BusRecord) -> bool:
        from_ms = int(self.replay.from_time.timestamp() * 1000)
        event_type = (record.header("event_type") or b"").decode()
        return record.timestamp_ms >= from_ms and TypeFilter.of(self.sub.types)(event_type)

    async def _deliver(self, record: BusRecord, rows: list[AttemptRow]) -> bool:
        """POST one replayed event until it is accepted; False when asked to stop first."""
        signer = Signer(self.store, self.sub.id, self.clock)
        attempt = 0
        while not self.stop.is_set():
            attempt += 1
            await signer.load()  # every try: a rotation during a long replay takes effect at once
            sent = await send_event(
                self.client, self.sub, await signer.secrets(), record, self.targets, replay_id=self.replay.id
            )
            rows.append(
                AttemptRow(
                    subscription_id=self.sub.id,
                    event_id=(record.header("event_id") or b"").decode() or None,
                    event_type=(record.header("event_type") or b"").decode() or None,
                    topic=record.topic.removeprefix(self.prefix),
                    partition=record.partition,
                    offset=record.offset,
                    attempt=attempt,
                    at=self.clock.now(),
                    status_code=sent.status_code,
                    latency_ms=sent.latency_ms,
                    outcome="delivered" if sent.error is None else "failed",
                    error=sent.error,
                    replay_id=self.replay.id,
                )
            )
            if sent.error is None:
                self.delivered += 1
                return True
            delay = self.tuning.backoff.delay(attempt, self.rng.random())
            with contextlib.suppress(TimeoutError):  # the timeout is the wait itself
                await asyncio.wait_for(self.stop.wait(), delay)
        return False


def _gone() -> None:
    raise BusError("records of the replay's range are no longer on the log")


def _open(positions: Positions) -> bool:
    return any(nxt < end for parts in positions.values() for nxt, end in parts.values())
