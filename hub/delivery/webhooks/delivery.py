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
from typing import TYPE_CHECKING

import httpx
import structlog
from sqlalchemy.exc import OperationalError

from hub.delivery.webhooks.log import AttemptRow, DeliveryLog
from hub.delivery.webhooks.rules import Backoff, TypeFilter, signature_header
from hub.delivery.webhooks.store import MAX_ERROR_CHARS, Subscription, SubscriptionStore
from hub.errors import ArchiveError, BusError
from hub.ports import SystemClock

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from datetime import datetime

    from hub.delivery.webhooks.targets import TargetPolicy
    from hub.ports import BusRecord, Clock, Consumer, EventBus, TopicPartition

logger = structlog.get_logger()

USER_AGENT = "hospital-hub-webhooks/1"


@dataclass(frozen=True, slots=True)
class Sent:
    """What one POST came to: the HTTP status (None: no answer), why it failed (None: 2xx), how long."""

    status_code: int | None
    error: str | None
    latency_ms: float


async def send_event(
    client: httpx.AsyncClient,
    subscription: Subscription,
    secrets: Sequence[str],
    record: BusRecord,
    targets: TargetPolicy | None = None,
    *,
    replay_id: str | None = None,
) -> Sent:
    """POST one event signed with every secret that signs now (rules.signature_header).

    The body is the event's canonical JSON exactly as it is on the log, so the signature covers
    the bytes the receiver gets. Redirects are not followed: a 3xx is a failure to fix the URL.
    A replayed delivery carries `X-Hub-Replay: <replay id>`.
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
        "X-Hub-Signature-256": signature_header(secrets, body),
    }
    if replay_id is not None:
        headers["X-Hub-Replay"] = replay_id
    started = time.perf_counter()

    def took() -> float:
        return round((time.perf_counter() - started) * 1000, 1)

    refused = await targets.refusal(subscription.url) if targets is not None else None
    if refused is not None:
        return Sent(None, f"target refused: {refused}"[:MAX_ERROR_CHARS], took())
    try:
        response = await client.post(subscription.url, content=body, headers=headers)
    except httpx.TimeoutException as exc:
        return Sent(None, f"timeout ({type(exc).__name__})", took())
    except httpx.HTTPError as exc:
        return Sent(None, f"{type(exc).__name__}: {exc}"[:MAX_ERROR_CHARS], took())
    if response.is_success:
        return Sent(response.status_code, None, took())
    # The receiver's body is not kept: it may echo the event, and events carry patient tokens.
    return Sent(response.status_code, f"HTTP {response.status_code} {response.reason_phrase}".strip(), took())


async def post_event(
    client: httpx.AsyncClient,
    subscription: Subscription,
    secret: str,
    record: BusRecord,
    targets: TargetPolicy | None = None,
) -> str | None:
    """POST one event; None when the receiver answered 2xx, else why not (for last_error and logs)."""
    return (await send_event(client, subscription, [secret], record, targets)).error


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
    concurrency: int = 1  # partitions of one subscription POSTed to at once (order per partition holds)
    max_attempts: int = 0  # consecutive failures of one event that pause the subscription; 0: never
    log_days: float = 30.0  # delivery-log rows kept this long
    replay_lease_s: float = 60.0  # a node running a replay renews its claim this often (others wait)


@dataclass(slots=True)
class _Retry:
    """One partition's backoff: how often its head event failed in a row, and when to try again."""

    failures: int
    not_before: float  # time.monotonic()


class Signer:
    """The secrets a subscription signs with: read again by `load()` (the worker does, once per
    batch, so a rotation on any node is in effect for the next batch), the previous one dropped
    the moment its overlap ends on `clock`."""

    def __init__(self, store: SubscriptionStore, sub_id: str, clock: Clock) -> None:
        self._store = store
        self._sub_id = sub_id
        self._clock = clock
        self._current: str | None = None
        self._previous: tuple[str, datetime] | None = None

    async def load(self) -> None:
        """Raises ArchiveError when the secret is gone or does not decrypt (HUB_SECRET_KEY changed)."""
        self._current, self._previous = await asyncio.to_thread(
            self._store.signing_secrets, self._sub_id, self._clock.now()
        )

    async def secrets(self) -> list[str]:
        """The secrets that sign now, newest first (loaded on first use)."""
        if self._current is None:
            await self.load()
        current = self._current or ""
        if self._previous is not None and self._previous[1] > self._clock.now():
            return [current, self._previous[0]]
        return [current]


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
        log: DeliveryLog | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.subscription = subscription
        self._targets = targets  # None: no target check (build_hub always passes the settings' policy)
        self.stopping = asyncio.Event()
        self._store = store
        self._bus = bus
        self._client = client
        self._tuning = tuning
        self._clock = clock or SystemClock()
        self._log = log
        self._signer = Signer(store, subscription.id, self._clock)
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
        self._attempts: list[AttemptRow] = []  # not yet written to the delivery log

    def stop(self) -> None:
        self.stopping.set()

    async def run(self) -> None:
        sub = self.subscription
        log = logger.bind(subscription=sub.id)
        try:
            await self._signer.load()
        except ArchiveError as exc:
            log.exception("webhook_secret_unreadable")
            await asyncio.to_thread(self._store.record_failure, sub.id, str(exc), self._clock.now())
            await self.stopping.wait()  # nothing can be signed: wait to be paused, deleted or stopped
            return
        consumer = await self._bus.consumer(
            list(self._short), group=sub.group, from_beginning=True, client_id=sub.group
        )
        log.info("webhook_worker_started", topics=list(sub.topics))
        try:
            while not self.stopping.is_set():
                records = await consumer.poll(max_records=self._tuning.batch, timeout_s=self._tuning.poll_s)
                if records and not await self._deliver(consumer, records):
                    await self._wait_for_retry()  # all it read is backing off: do not spin on it
        finally:
            await self._flush_delivered()
            await consumer.close()
            log.info("webhook_worker_stopped")

    async def _deliver(self, consumer: Consumer, records: Sequence[BusRecord]) -> bool:
        """Deliver a batch in order per partition (up to `concurrency` partitions at once); a
        partition stops at its first failure (or while it backs off) and is rewound so a later poll
        retries it. False when nothing could be tried."""
        sub = self.subscription
        try:
            await self._signer.load()  # a rotation since the last batch signs this one
        except ArchiveError as exc:  # deleted or unreadable meanwhile: nothing can be signed
            await asyncio.to_thread(self._store.record_failure, sub.id, str(exc), self._clock.now())
            for tp in {(r.topic, r.partition) for r in records}:
                await self._seek(consumer, tp, min(r.offset for r in records if (r.topic, r.partition) == tp))
            return False
        done: dict[TopicPartition, int] = {}  # next offset to commit
        rewind: dict[TopicPartition, int] = {}  # partitions not to touch again in this batch
        tried = False
        assigned = consumer.assignment()
        # A partition that moved to another member is retried by its new owner.
        self._retries = {tp: r for tp, r in self._retries.items() if tp in assigned}
        now = time.monotonic()
        by_tp: dict[TopicPartition, list[BusRecord]] = {}
        for record in records:
            by_tp.setdefault((record.topic, record.partition), []).append(record)
        gate = asyncio.Semaphore(max(1, self._tuning.concurrency))

        async def partition(tp: TopicPartition, queue: list[BusRecord]) -> None:
            nonlocal tried
            async with gate:
                for record in queue:
                    start = sub.start(self._short.get(record.topic, record.topic), record.partition)
                    if record.offset < start:  # older than the subscription: jump to where it began
                        rewind[tp] = start
                        return
                    retry = self._retries.get(tp)
                    if self.stopping.is_set() or (retry is not None and retry.not_before > now):
                        rewind[tp] = record.offset
                        return
                    tried = True
                    wanted = self._wanted((record.header("event_type") or b"").decode())
                    if wanted and not await self._attempt(record):
                        rewind[tp] = record.offset
                        return
                    done[tp] = record.offset + 1

        await asyncio.gather(*(partition(tp, queue) for tp, queue in by_tp.items()))
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

    async def _attempt(self, record: BusRecord) -> bool:
        """POST one event; True when it was accepted. Keeps the backoff count, the delivery log and state."""
        sub = self.subscription
        tp = (record.topic, record.partition)
        retry = self._retries.get(tp)
        try:
            secrets = await self._signer.secrets()
        except ArchiveError as exc:  # deleted or rotated away meanwhile: fail like a refused POST
            sent = Sent(None, str(exc)[:MAX_ERROR_CHARS], 0.0)
        else:
            sent = await send_event(self._client, sub, secrets, record, self._targets)
        error = sent.error
        event_id = (record.header("event_id") or b"").decode() or None
        at = self._clock.now()
        self._attempts.append(
            AttemptRow(
                subscription_id=sub.id,
                event_id=event_id,
                event_type=(record.header("event_type") or b"").decode() or None,
                topic=self._short.get(record.topic, record.topic),
                partition=record.partition,
                offset=record.offset,
                attempt=(retry.failures if retry is not None else 0) + 1,
                at=at,
                status_code=sent.status_code,
                latency_ms=sent.latency_ms,
                outcome="delivered" if error is None else "failed",
                error=error,
            )
        )
        log = logger.bind(
            subscription=sub.id, topic=record.topic, partition=record.partition, offset=record.offset,
            event_id=event_id, duration_ms=sent.latency_ms,
        )  # fmt: skip
        if error is None:
            self._retries.pop(tp, None)
            self._resumed_failures = 0
            self._delivered = (event_id, at)
            log.debug("webhook_delivered", outcome="delivered")  # per event: info would flood production logs
            return True
        await self._flush_delivered()  # the successes before it come first in the delivery state
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
        await asyncio.to_thread(self._store.record_failure, sub.id, error, at, self._failures())
        limit = self._tuning.max_attempts
        if limit and failures >= limit and not self.stopping.is_set():
            # Nothing is skipped: the subscription waits, paused, for its owner to fix the receiver.
            why = f"paused after {failures} failed attempts (HUB_WEBHOOK_MAX_ATTEMPTS): {error}"
            # The reason first: whoever sees "paused" must see why.
            await asyncio.to_thread(self._store.record_failure, sub.id, why, at, failures)
            await asyncio.to_thread(self._store.set_status, sub.id, "paused", at)
            log.error("webhook_subscription_paused", failures=failures)
            self.stop()
        return False

    async def _flush_delivered(self) -> None:
        """Write the delivery log and the last delivered event: once per batch, not once per event."""
        attempts, self._attempts = self._attempts, []
        if attempts and self._log is not None:
            try:
                await asyncio.to_thread(self._log.record, attempts)
            except OperationalError as exc:  # the log is for people; delivery goes on without it
                logger.warning("webhook_log_unwritable", subscription=self.subscription.id, error=str(exc))
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
