"""Webhook subscriptions: where they are stored, how a delivery is signed, and the delivery worker.

For downstream applications that take events over plain HTTP (the GitHub-webhooks model): each
subscription names a URL, topics and event types; `hub serve` POSTs every matching event to it.

Storage: table `hub_subscriptions` in the read-model database (every `hub serve` node sees the
same subscriptions). The signing secret is shown once, at creation, and stored encrypted
(AES-256-GCM, key = SHA-256 of a label and HUB_SECRET_KEY): the hub needs it back to sign, so
it cannot be a hash. Changing HUB_SECRET_KEY makes stored secrets unreadable; such subscriptions
record the error and deliver nothing until recreated.

Delivery (`WebhookService`, run by `hub serve`): one consumer group `webhook.<id>` per active
subscription over its topics, so several nodes share its partitions. Guarantees, as built:

- at least once: an event's offset is committed only after the receiver answered 2xx. A crash,
  a pause or a rebalance can repeat what was delivered since the last commit (at most one
  batch per partition); receivers deduplicate by `X-Hub-Event-Id`;
- in order per partition (per asset, item or work order): a failed event is retried, with
  exponential backoff (1 s doubling to 5 min, jittered), and nothing after it on its partition is
  sent first; nothing is ever skipped. The subscription's other partitions slow to the same pace
  (one batch per backoff), since one receiver is failing;
- a subscription starts at the end of the log when it is created: its start offsets are stored
  with it, so it never receives older events, and a restart continues from the committed offset;
- created, paused, resumed and deleted subscriptions are picked up within `reload_s` seconds.
  A paused subscription keeps its position: on resume it receives what was published meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import random
import secrets
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal

import httpx
import structlog
from sqlalchemy import (
    JSON,
    Column,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    insert,
    inspect,
    select,
    update,
)
from sqlalchemy.exc import DBAPIError, OperationalError

from hub.crypto import RawCipher
from hub.errors import ArchiveError, BusError
from projections.db import write_transaction
from projections.sqltypes import UtcDateTime

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping, Sequence

    from sqlalchemy import Engine, Row

    from hub.ports import BusRecord, Consumer, EventBus, TopicPartition

logger = structlog.get_logger()

Status = Literal["active", "paused", "deleted"]
StartOffsets = dict[str, dict[str, int]]  # catalogue topic -> partition (as text) -> first offset

KEY_LABEL = b"hub.webhooks.signing-secret.v1\x00"
USER_AGENT = "hospital-hub-webhooks/1"
MAX_ERROR_CHARS = 500

METADATA = MetaData()
subscriptions_table = Table(
    "hub_subscriptions",
    METADATA,
    Column("id", String(32), primary_key=True),
    Column("url", String(2000), nullable=False),
    Column("topics", JSON, nullable=False),
    Column("types", JSON, nullable=False),
    Column("description", String(500), nullable=False, default=""),
    Column("created_by", String(64), nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("status", String(16), nullable=False),
    Column("status_changed_at", UtcDateTime(), nullable=False),
    Column("secret_encrypted", LargeBinary),  # NULL once deleted
    Column("start_offsets", JSON, nullable=False),
    Column("last_event_id", String(64)),
    Column("last_delivered_at", UtcDateTime()),
    Column("consecutive_failures", Integer, nullable=False, default=0),
    Column("last_error", String(MAX_ERROR_CHARS)),
    Column("last_attempt_at", UtcDateTime()),
)


# --- pure parts: signature, backoff, type filter ---------------------------------------------------


def signature(secret: str, body: bytes) -> str:
    """`X-Hub-Signature-256`: `sha256=` + hex HMAC-SHA256 of the exact body, keyed by the secret's UTF-8."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify_signature(secret: str, body: bytes, header: str) -> bool:
    """What a receiver does: recompute and compare in constant time."""
    return hmac.compare_digest(signature(secret, body), header)


@dataclass(frozen=True, slots=True)
class Backoff:
    """Retry delays: `initial_s` doubling per consecutive failure up to `cap_s`, then jittered."""

    initial_s: float = 1.0
    cap_s: float = 300.0

    def delay(self, failures: int, jitter: float) -> float:
        """Seconds to wait after `failures` consecutive failures; `jitter` in [0, 1].

        "Equal jitter": a uniform draw in the upper half of the exponential step, so nodes retrying
        one receiver spread out, yet a delay never drops below half its step nor exceeds the cap.
        """
        if failures < 1:
            return 0.0
        step = min(self.cap_s, self.initial_s * 2.0 ** min(failures - 1, 60))
        return step * (0.5 + 0.5 * min(1.0, max(0.0, jitter)))


@dataclass(frozen=True, slots=True)
class TypeFilter:
    """Event types to deliver: exact names and `asset.*`-style prefixes; empty = everything."""

    exact: frozenset[str]
    prefixes: tuple[str, ...]

    @classmethod
    def of(cls, types: Iterable[str]) -> TypeFilter:
        wanted = list(types)
        return cls(
            frozenset(t for t in wanted if not t.endswith("*")),
            tuple(t[:-1] for t in wanted if t.endswith("*")),
        )

    def __call__(self, event_type: str) -> bool:
        if not self.exact and not self.prefixes:
            return True
        return event_type in self.exact or event_type.startswith(self.prefixes)


def subscription_key(secret_bytes: bytes) -> bytes:
    """The AES key that encrypts signing secrets, derived from HUB_SECRET_KEY."""
    return hashlib.sha256(KEY_LABEL + secret_bytes).digest()


# --- storage -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Subscription:
    """A subscription as the API shows it: everything but the secret."""

    id: str
    url: str
    topics: tuple[str, ...]
    types: tuple[str, ...]
    description: str
    created_by: str
    created_at: datetime
    status: Status
    status_changed_at: datetime
    start_offsets: StartOffsets
    last_event_id: str | None
    last_delivered_at: datetime | None
    consecutive_failures: int
    last_error: str | None
    last_attempt_at: datetime | None

    @property
    def group(self) -> str:
        return f"webhook.{self.id}"

    def start(self, topic: str, partition: int) -> int:
        """First offset to deliver; partitions created after the subscription start at 0."""
        return self.start_offsets.get(topic, {}).get(str(partition), 0)


class SubscriptionStore:
    """Subscriptions in the read-model database. Synchronous: async callers use `asyncio.to_thread`."""

    def __init__(self, engine: Engine, key: bytes) -> None:
        self._engine = engine
        self._cipher = RawCipher(key)
        self._ready = False
        self._ready_lock = threading.Lock()

    def ensure_tables(self) -> None:
        """Create the table once per store; several nodes (or threads) may race to create it."""
        if self._ready:
            return
        with self._ready_lock:
            if self._ready:
                return
            try:
                METADATA.create_all(self._engine, checkfirst=True)
            except DBAPIError:
                # PostgreSQL: another process created it between the check and the CREATE.
                if not inspect(self._engine).has_table(subscriptions_table.name):
                    raise
            self._ready = True

    def create(
        self,
        *,
        url: str,
        topics: Sequence[str],
        types: Sequence[str],
        description: str,
        created_by: str,
        start_offsets: StartOffsets,
        sub_id: str | None = None,
        now: datetime | None = None,
    ) -> tuple[Subscription, str]:
        """A new active subscription and its signing secret (returned once, stored encrypted)."""
        self.ensure_tables()
        sub_id = sub_id or new_subscription_id()
        secret = "whsec_" + secrets.token_urlsafe(32)
        at = now or datetime.now(UTC)
        with write_transaction(self._engine) as conn:
            conn.execute(
                insert(subscriptions_table).values(
                    id=sub_id,
                    url=url,
                    topics=list(topics),
                    types=list(types),
                    description=description,
                    created_by=created_by,
                    created_at=at,
                    status="active",
                    status_changed_at=at,
                    secret_encrypted=self._cipher.encrypt(secret.encode(), context=_context(sub_id)),
                    start_offsets=start_offsets,
                    consecutive_failures=0,
                )
            )
        logger.info("subscription_created", subscription=sub_id, created_by=created_by, topics=list(topics))
        found = self.get(sub_id)
        if found is None:  # pragma: no cover - the row was just committed
            raise RuntimeError(f"subscription {sub_id} vanished after insert")
        return found, secret

    def get(self, sub_id: str) -> Subscription | None:
        """The subscription, deleted ones included (callers decide what a deleted one answers)."""
        self.ensure_tables()
        with self._engine.connect() as conn:
            row = conn.execute(select(subscriptions_table).where(subscriptions_table.c.id == sub_id)).first()
        return None if row is None else _subscription(row)

    def list(
        self, *, created_by: str | None = None, statuses: Iterable[Status] = ("active", "paused")
    ) -> list[Subscription]:
        self.ensure_tables()
        t = subscriptions_table
        query = select(t).where(t.c.status.in_(list(statuses))).order_by(t.c.created_at, t.c.id)
        if created_by is not None:
            query = query.where(t.c.created_by == created_by)
        with self._engine.connect() as conn:
            return [_subscription(r) for r in conn.execute(query)]

    def set_status(self, sub_id: str, status: Status, now: datetime | None = None) -> Subscription | None:
        """Pause, resume or delete; a deleted subscription stays deleted and forgets its secret."""
        t = subscriptions_table
        values: dict[str, Any] = {"status": status, "status_changed_at": now or datetime.now(UTC)}
        if status == "deleted":
            values["secret_encrypted"] = None
        with write_transaction(self._engine) as conn:
            changed = conn.execute(
                update(t)
                .where(t.c.id == sub_id, t.c.status != "deleted", t.c.status != status)
                .values(**values)
            ).rowcount
        if changed:
            logger.info("subscription_status_changed", subscription=sub_id, status=status)
        return self.get(sub_id)

    def set_description(self, sub_id: str, description: str) -> None:
        t = subscriptions_table
        with write_transaction(self._engine) as conn:
            conn.execute(update(t).where(t.c.id == sub_id).values(description=description))

    def secret(self, sub_id: str) -> str:
        """The signing secret; raises ArchiveError when it is gone or does not decrypt with this key."""
        with self._engine.connect() as conn:
            stored = conn.execute(
                select(subscriptions_table.c.secret_encrypted).where(subscriptions_table.c.id == sub_id)
            ).scalar_one_or_none()
        if stored is None:
            raise ArchiveError(f"subscription {sub_id} has no signing secret (deleted)")
        return self._cipher.decrypt(stored, context=_context(sub_id)).decode()

    def record_success(self, sub_id: str, event_id: str | None, at: datetime, failures: int = 0) -> None:
        """An event was delivered; `failures`: still counting when an event of another partition fails."""
        t = subscriptions_table
        with write_transaction(self._engine) as conn:
            conn.execute(
                update(t)
                .where(t.c.id == sub_id)
                .values(
                    last_event_id=event_id,
                    last_delivered_at=at,
                    last_attempt_at=at,
                    consecutive_failures=failures,
                )
            )

    def record_failure(self, sub_id: str, error: str, at: datetime, failures: int | None = None) -> None:
        """A delivery failed; `failures` is the worker's count of consecutive failures (None: add one)."""
        t = subscriptions_table
        with write_transaction(self._engine) as conn:
            conn.execute(
                update(t)
                .where(t.c.id == sub_id)
                .values(
                    last_error=error[:MAX_ERROR_CHARS],
                    last_attempt_at=at,
                    consecutive_failures=t.c.consecutive_failures + 1 if failures is None else failures,
                )
            )


def new_subscription_id() -> str:
    return secrets.token_hex(8)


def _context(sub_id: str) -> bytes:
    # Authenticated with the ciphertext: a secret copied onto another row does not decrypt.
    return f"hub_subscriptions:{sub_id}".encode()


def _subscription(row: Row[Any]) -> Subscription:
    return Subscription(
        id=row.id,
        url=row.url,
        topics=tuple(row.topics),
        types=tuple(row.types),
        description=row.description,
        created_by=row.created_by,
        created_at=row.created_at,
        status=row.status,
        status_changed_at=row.status_changed_at,
        start_offsets={t: {p: int(o) for p, o in parts.items()} for t, parts in row.start_offsets.items()},
        last_event_id=row.last_event_id,
        last_delivered_at=row.last_delivered_at,
        consecutive_failures=row.consecutive_failures,
        last_error=row.last_error,
        last_attempt_at=row.last_attempt_at,
    )


# --- delivery ------------------------------------------------------------------------------------


async def post_event(
    client: httpx.AsyncClient, subscription: Subscription, secret: str, record: BusRecord
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
    hold_poll_s: float = 5.0  # during a backoff, stay a live group member at this interval
    timeout_s: float = 10.0  # per HTTP request
    backoff: Backoff = Backoff()
    stop_grace_s: float = 15.0  # at shutdown, let an in-flight request finish
    restart_s: float = 10.0  # after a worker crashed (e.g. its topics are missing), try again after this


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
    ) -> None:
        self.subscription = subscription
        self.stopping = asyncio.Event()
        self._store = store
        self._bus = bus
        self._client = client
        self._tuning = tuning
        self._rng = rng or random.Random()  # noqa: S311  (jitter, not a secret)
        self._short = {f"{prefix}{t}": t for t in subscription.topics}
        self._wanted = TypeFilter.of(subscription.types)
        # Continue the backoff where it stood (another node, or before a restart).
        self._failures = subscription.consecutive_failures
        # The partition whose event keeps failing: only its success ends the backoff, so a
        # receiver that refuses one event is not retried at full speed because others pass.
        self._blocked: TopicPartition | None = None
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
                if self._failures:
                    await self._hold(consumer, self._tuning.backoff.delay(self._failures, self._rng.random()))
                    if self.stopping.is_set():
                        break
                records = await consumer.poll(max_records=self._tuning.batch, timeout_s=self._tuning.poll_s)
                if records:
                    await self._deliver(consumer, records, secret)
        finally:
            await consumer.close()
            log.info("webhook_worker_stopped")

    async def _deliver(self, consumer: Consumer, records: Sequence[BusRecord], secret: str) -> None:
        """Deliver a batch in order; stop at the first failure and rewind so the next poll retries it."""
        sub = self.subscription
        done: dict[TopicPartition, int] = {}  # next offset to commit
        rewind: dict[TopicPartition, int] = {}  # partitions not to touch again in this batch
        failed = False
        if self._blocked is not None and self._blocked not in consumer.assignment():
            self._blocked, self._failures = None, 0  # its new owner retries it
        for record in records:
            tp = (record.topic, record.partition)
            if tp in rewind:
                continue
            start = sub.start(self._short.get(record.topic, record.topic), record.partition)
            if record.offset < start:  # older than the subscription: jump to where it began
                rewind[tp] = start
                continue
            if failed or self.stopping.is_set():
                rewind[tp] = record.offset
                continue
            wanted = self._wanted((record.header("event_type") or b"").decode())
            if wanted and not await self._attempt(record, secret):
                failed = True
                rewind[tp] = record.offset
                continue
            done[tp] = record.offset + 1
        await self._flush_delivered()
        await self._commit(consumer, done)
        for tp, offset in rewind.items():
            await self._seek(consumer, tp, offset)

    async def _attempt(self, record: BusRecord, secret: str) -> bool:
        """POST one event; True when it was accepted. Keeps the backoff count and the delivery state."""
        sub = self.subscription
        tp = (record.topic, record.partition)
        started = time.perf_counter()
        error = await post_event(self._client, sub, secret, record)
        event_id = (record.header("event_id") or b"").decode() or None
        log = logger.bind(
            subscription=sub.id, topic=record.topic, partition=record.partition, offset=record.offset,
            event_id=event_id, duration_ms=round((time.perf_counter() - started) * 1000, 1),
        )  # fmt: skip
        if error is None:
            if self._blocked in (None, tp):
                self._blocked, self._failures = None, 0
            self._delivered = (event_id, datetime.now(UTC))
            log.info("webhook_delivered", outcome="delivered")
            return True
        await self._flush_delivered()  # the successes before it come first in the delivery state
        self._failures += 1
        self._blocked = self._blocked or tp
        log.warning("webhook_delivery_failed", outcome="retry", error=error, failures=self._failures)
        await asyncio.to_thread(self._store.record_failure, sub.id, error, datetime.now(UTC), self._failures)
        return False

    async def _flush_delivered(self) -> None:
        """Write the last delivered event to the subscription: once per batch, not once per event."""
        if self._delivered is not None:
            event_id, at = self._delivered
            self._delivered = None
            await asyncio.to_thread(
                self._store.record_success, self.subscription.id, event_id, at, self._failures
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

    async def _hold(self, consumer: Consumer, seconds: float) -> None:
        """Wait out a backoff without moving forward, while staying a live member of the group.

        A consumer that stops polling is dropped from its group (Kafka's max.poll.interval), and
        would not hand partitions over to a node that joins meanwhile; so poll one record every
        `hold_poll_s` and seek back to it.
        """
        deadline = time.monotonic() + seconds
        while not self.stopping.is_set():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            with contextlib.suppress(TimeoutError):  # the timeout is the wait itself
                await asyncio.wait_for(self.stopping.wait(), min(remaining, self._tuning.hold_poll_s))
            for record in await consumer.poll(max_records=1, timeout_s=0):
                await self._seek(consumer, (record.topic, record.partition), record.offset)


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
    ) -> None:
        self._store = store
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
