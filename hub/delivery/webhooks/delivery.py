"""Webhook delivery: POST each event, retry with backoff, one consumer group per subscription.

Order is kept per partition (one subject is one partition), so a refused event holds back only
its own partition: each partition has its own failure count and backoff, and the others flow on.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import httpx
import structlog
from sqlalchemy.exc import OperationalError

from hub.delivery.webhooks.rules import Backoff, TypeFilter, signature
from hub.delivery.webhooks.store import MAX_ERROR_CHARS, Subscription, SubscriptionStore
from hub.errors import ArchiveError, BusError

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from hub.delivery.webhooks.targets import TargetPolicy
    from hub.ports import BusRecord, Consumer, EventBus, TopicPartition

logger = structlog.get_logger()

USER_AGENT = "hospital-hub-webhooks/1"


async def post_event(
    client: httpx.AsyncClient,
    subscription: Subscription,
    secret: str,
    record: BusRecord,
    targets: TargetPolicy | None = None,
) -> str | None:
    """POST one event; None when the receiver answered 2xx, else why not (for last_error and logs).

    The body is the event's canonical JSON exactly as it is on the log, so the signature covers
    the bytes the receiver gets. Redirects are not followed: a 3xx is a failure to fix the URL.
    """
    event_type = (record.header("event_type") or b"").decode()
    event_id = (record.header("event_id") or b"").decode()
    body = record.value
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "X-Hub-Event-Type": event_type,
        "X-Hub-Event-Id": event_id,
        "X-Hub-Delivery": str(uuid.uuid4()),
        "X-Hub-Subscription": subscription.id,
        "X-Hub-Signature-256": signature(secret, body),
    }
    refused = await targets.refusal(subscription.url) if targets is not None else None
    if refused is not None:
        return f"target refused: {refused}"[:MAX_ERROR_CHARS]
    try:
        response = await client.post(subscription.url, content=body, headers=headers)
    except httpx.TimeoutException as exc:
        return f"timeout ({type(exc).__name__})"
    except httpx.HTTPError as exc:
        return f"{type(exc).__name__}: {exc}"[:MAX_ERROR_CHARS]
    if response.is_success:
        return None
    # The receiver's body is not kept: it may echo the event, and events carry patient tokens.
    return f"HTTP {response.status_code} {response.reason_phrase}".strip()


@dataclass(frozen=True, slots=True)
class Tuning:
    """Timings of the delivery loop; tests shorten them."""

    reload_s: float = 2.0  # how often the subscription table is re-read
    poll_s: float = 1.0
    batch: int = 100  # records per poll: at most this many are repeated after a crash
    hold_poll_s: float = 5.0  # while every partition with records is backing off, look again this often
    timeout_s: float = 10.0  # per HTTP request
    backoff: Backoff = field(default_factory=Backoff)
    stop_grace_s: float = 15.0  # at shutdown, let an in-flight request finish
    restart_s: float = 10.0  # after a worker crashed (e.g. its topics are missing), try again after this


@dataclass(slots=True)
class _Retry:
    """One partition's backoff: how often its head event failed in a row, and when to try again."""

    failures: int
    not_before: float  # time.monotonic()


class SubscriptionWorker:
    """Delivers one subscription's events from this node (its share of the group's partitions)."""

    def __init__(
        self,
        subscription: Subscription,
        *,
        store: SubscriptionStore,
        bus: EventBus,
        client: httpx.AsyncClient,
        prefix: str = "",
        tuning: Tuning = Tuning(),
        rng: random.Random | None = None,
        targets: TargetPolicy | None = None,
    ) -> None:
        self.subscription = subscription
        self._targets = targets  # None: no target check (build_hub always passes the settings' policy)
        self.stopping = asyncio.Event()
        self._store = store
        self._bus = bus
        self._client = client
        self._tuning = tuning
        self._rng = rng or random.Random()  # noqa: S311  # nosec B311: jitter, not a secret
        self._short = {f"{prefix}{t}": t for t in subscription.topics}
        self._wanted = TypeFilter.of(subscription.types)
        # Partitions whose head event was refused: each waits out its own backoff, and only its own
        # success ends it, so a receiver refusing one event is not retried at full speed because
        # other partitions' events pass.
        self._retries: dict[TopicPartition, _Retry] = {}
        # Continue the backoff where it stood (another node, or before a restart) for the first
        # partition that fails again; the store keeps one count per subscription, not per partition.
        self._resumed_failures = subscription.consecutive_failures
        self._delivered: tuple[str | None, datetime] | None = None  # not yet written to the store

    def stop(self) -> None:
        self.stopping.set()

    async def run(self) -> None:
        sub = self.subscription
        log = logger.bind(subscription=sub.id)
        try:
            secret = await asyncio.to_thread(self._store.secret, sub.id)
        except ArchiveError as exc:
            log.exception("webhook_secret_unreadable")
            await asyncio.to_thread(self._store.record_failure, sub.id, str(exc), datetime.now(UTC))
            await self.stopping.wait()  # nothing can be signed: wait to be paused, deleted or stopped
            return
        consumer = await self._bus.consumer(
            list(self._short), group=sub.group, from_beginning=True, client_id=sub.group
        )
        log.info("webhook_worker_started", topics=list(sub.topics))
        try:
            while not self.stopping.is_set():
                records = await consumer.poll(max_records=self._tuning.batch, timeout_s=self._tuning.poll_s)
                if records and not await self._deliver(consumer, records, secret):
                    await self._wait_for_retry()  # all it read is backing off: do not spin on it
        finally:
            await consumer.close()
            log.info("webhook_worker_stopped")

    async def _deliver(self, consumer: Consumer, records: Sequence[BusRecord], secret: str) -> bool:
        """Deliver a batch in order per partition; a partition stops at its first failure (or while it
        backs off) and is rewound so a later poll retries it. False when nothing could be tried."""
        sub = self.subscription
        done: dict[TopicPartition, int] = {}  # next offset to commit
        rewind: dict[TopicPartition, int] = {}  # partitions not to touch again in this batch
        tried = False
        assigned = consumer.assignment()
        # A partition that moved to another member is retried by its new owner.
        self._retries = {tp: r for tp, r in self._retries.items() if tp in assigned}
        now = time.monotonic()
        for record in records:
            tp = (record.topic, record.partition)
            if tp in rewind:
                continue
            start = sub.start(self._short.get(record.topic, record.topic), record.partition)
            if record.offset < start:  # older than the subscription: jump to where it began
                rewind[tp] = start
                continue
            retry = self._retries.get(tp)
            if self.stopping.is_set() or (retry is not None and retry.not_before > now):
                rewind[tp] = record.offset
                continue
            tried = True
            wanted = self._wanted((record.header("event_type") or b"").decode())
            if wanted and not await self._attempt(record, secret):
                rewind[tp] = record.offset
                continue
            done[tp] = record.offset + 1
        await self._flush_delivered()
        await self._commit(consumer, done)
        for tp, offset in rewind.items():
            await self._seek(consumer, tp, offset)
        return tried or bool(done)

    async def _wait_for_retry(self) -> None:
        """Sleep until the first backoff ends (at most `hold_poll_s`: new records may arrive meanwhile)."""
        due = min((r.not_before for r in self._retries.values()), default=time.monotonic())
        wait = min(max(0.0, due - time.monotonic()), self._tuning.hold_poll_s)
        with contextlib.suppress(TimeoutError):  # the timeout is the wait itself
            await asyncio.wait_for(self.stopping.wait(), wait)

    def _failures(self) -> int:
        """The subscription's failure count as shown to its owner: the worst partition's."""
        return max((r.failures for r in self._retries.values()), default=0)

    async def _attempt(self, record: BusRecord, secret: str) -> bool:
        """POST one event; True when it was accepted. Keeps the backoff count and the delivery state."""
        sub = self.subscription
        tp = (record.topic, record.partition)
        started = time.perf_counter()
        error = await post_event(self._client, sub, secret, record, self._targets)
        event_id = (record.header("event_id") or b"").decode() or None
        log = logger.bind(
            subscription=sub.id, topic=record.topic, partition=record.partition, offset=record.offset,
            event_id=event_id, duration_ms=round((time.perf_counter() - started) * 1000, 1),
        )  # fmt: skip
        if error is None:
            self._retries.pop(tp, None)
            self._resumed_failures = 0
            self._delivered = (event_id, datetime.now(UTC))
            log.debug("webhook_delivered", outcome="delivered")  # per event: info would flood production logs
            return True
        await self._flush_delivered()  # the successes before it come first in the delivery state
        retry = self._retries.get(tp)
        failures = (retry.failures if retry is not None else self._resumed_failures) + 1
        self._resumed_failures = 0
        delay = self._tuning.backoff.delay(failures, self._rng.random())
        self._retries[tp] = _Retry(failures, time.monotonic() + delay)
        log.warning(
            "webhook_delivery_failed",
            outcome="retry",
            error=error,
            failures=failures,
            retry_in_s=round(delay, 2),
        )
        await asyncio.to_thread(
            self._store.record_failure, sub.id, error, datetime.now(UTC), self._failures()
        )
        return False

    async def _flush_delivered(self) -> None:
        """Write the last delivered event to the subscription: once per batch, not once per event."""
        if self._delivered is not None:
            event_id, at = self._delivered
            self._delivered = None
            await asyncio.to_thread(
                self._store.record_success, self.subscription.id, event_id, at, self._failures()
            )

    async def _commit(self, consumer: Consumer, offsets: Mapping[TopicPartition, int]) -> None:
        if not offsets:
            return
        try:
            await consumer.commit(offsets)
        except BusError as exc:
            # A rebalance gave a partition to another member, which starts from the last commit:
            # what was delivered here since then is delivered again (at least once, never lost).
            logger.warning("webhook_commit_rejected", subscription=self.subscription.id, error=str(exc))

    async def _seek(self, consumer: Consumer, tp: TopicPartition, offset: int) -> None:
        if tp not in consumer.assignment():
            return  # moved to another member, which resumes from the committed offset
        await consumer.seek(tp, offset)


class WebhookService:
    """Runs a `SubscriptionWorker` for every active subscription; `hub serve` runs one per node."""

    def __init__(
        self,
        store: SubscriptionStore,
        bus: EventBus,
        *,
        prefix: str = "",
        tuning: Tuning = Tuning(),
        transport: httpx.AsyncBaseTransport | None = None,
        targets: TargetPolicy | None = None,
    ) -> None:
        self._store = store
        self._targets = targets
        self._bus = bus
        self._prefix = prefix
        self._tuning = tuning
        self._transport = transport
        self._workers: dict[str, tuple[SubscriptionWorker, asyncio.Task[None]]] = {}
        self._retiring: list[asyncio.Task[None]] = []
        self._not_before: dict[str, float] = {}  # subscription -> monotonic time its worker may restart

    async def run(self, stop: asyncio.Event) -> None:
        await asyncio.to_thread(self._store.ensure_tables)
        async with httpx.AsyncClient(
            timeout=self._tuning.timeout_s, follow_redirects=False, transport=self._transport
        ) as client:
            try:
                while not stop.is_set():
                    try:
                        await self._reconcile(client)
                    except OperationalError as exc:
                        # The database is briefly unreachable: what runs keeps running; look again later.
                        logger.warning("webhook_subscriptions_unreadable", error=type(exc.orig).__name__)
                    with contextlib.suppress(TimeoutError):  # the timeout is the wait itself
                        await asyncio.wait_for(stop.wait(), self._tuning.reload_s)
            finally:
                await self._stop_all()

    async def _reconcile(self, client: httpx.AsyncClient) -> None:
        """Start workers for active subscriptions, stop those of paused or deleted ones."""
        active = {s.id: s for s in await asyncio.to_thread(self._store.list, statuses=("active",))}
        for sub_id, (worker, task) in list(self._workers.items()):
            if task.done():
                del self._workers[sub_id]
                await self._crashed(sub_id, task)
            elif sub_id not in active:
                worker.stop()
                del self._workers[sub_id]
                self._retiring.append(task)
        self._retiring = [t for t in self._retiring if not t.done()]
        now = time.monotonic()
        for sub_id, sub in active.items():
            if sub_id not in self._workers and self._not_before.get(sub_id, 0.0) <= now:
                worker = SubscriptionWorker(
                    sub,
                    store=self._store,
                    bus=self._bus,
                    client=client,
                    prefix=self._prefix,
                    tuning=self._tuning,
                    targets=self._targets,
                )
                self._workers[sub_id] = (worker, asyncio.create_task(worker.run(), name=f"webhook-{sub_id}"))

    async def _crashed(self, sub_id: str, task: asyncio.Task[None]) -> None:
        """A worker ended by itself: log why, show it on the subscription, restart it a little later."""
        exc = None if task.cancelled() else task.exception()
        if exc is None:
            return
        logger.error("webhook_worker_failed", subscription=sub_id, exc_info=exc)
        self._not_before[sub_id] = time.monotonic() + self._tuning.restart_s
        error = f"delivery worker failed: {type(exc).__name__}: {exc}"
        await asyncio.to_thread(self._store.record_failure, sub_id, error, datetime.now(UTC))

    async def _stop_all(self) -> None:
        tasks = list(self._retiring)
        for worker, task in self._workers.values():
            worker.stop()
            tasks.append(task)
        self._workers.clear()
        if not tasks:
            return
        _, pending = await asyncio.wait(tasks, timeout=self._tuning.stop_grace_s)
        for task in pending:
            task.cancel()
        results = await asyncio.gather(*tasks, return_exceptions=True)
        for result in results:
            if isinstance(result, Exception):
                logger.error("webhook_worker_failed", exc_info=result)
