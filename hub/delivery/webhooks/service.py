"""`WebhookService`: what `hub serve` runs for webhooks on one node.

A `SubscriptionWorker` per active subscription (started, paused, resumed and deleted ones picked
up within `reload_s`), the replays this node claimed (hub.delivery.webhooks.replay), and the
delivery log's pruning (rows older than `Tuning.log_days`).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import time
from datetime import timedelta
from typing import TYPE_CHECKING

import httpx
import structlog
from sqlalchemy.exc import OperationalError

from hub.delivery.webhooks.delivery import SubscriptionWorker, Tuning
from hub.delivery.webhooks.log import DeliveryLog
from hub.delivery.webhooks.replay import ReplayRun
from hub.ports import SystemClock

if TYPE_CHECKING:
    from hub.delivery.webhooks.store import SubscriptionStore
    from hub.delivery.webhooks.targets import TargetPolicy
    from hub.ports import Clock, EventBus

logger = structlog.get_logger()

PRUNE_EVERY_S = 3600.0


class WebhookService:
    """Runs a `SubscriptionWorker` for every active subscription; `hub serve` runs one per node."""

    def __init__(
        self,
        store: SubscriptionStore,
        bus: EventBus,
        *,
        prefix: str = "",
        tuning: Tuning = Tuning(),  # noqa: B008  (frozen: one shared default is safe)
        transport: httpx.AsyncBaseTransport | None = None,
        targets: TargetPolicy | None = None,
        clock: Clock | None = None,
        log: DeliveryLog | None = None,
    ) -> None:
        self._store = store
        self._clock = clock or SystemClock()
        self.log = log if log is not None else DeliveryLog(store.engine)
        self._owner = f"{socket.gethostname()}:{os.getpid()}:{id(self):x}"
        self._replays: dict[str, asyncio.Task[None]] = {}
        self._pruned_at = -PRUNE_EVERY_S
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
                        await self._start_replays(client, stop)
                        await self._prune()
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
                    log=self.log,
                    clock=self._clock,
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
        await asyncio.to_thread(self._store.record_failure, sub_id, error, self._clock.now())

    async def _start_replays(self, client: httpx.AsyncClient, stop: asyncio.Event) -> None:
        """Run the replays this node may claim (a node that died leaves its claim to expire)."""
        self._replays = {rid: t for rid, t in self._replays.items() if not t.done()}
        lease = timedelta(seconds=self._tuning.replay_lease_s)
        for replay in await asyncio.to_thread(self.log.claim_replays, self._owner, self._clock.now(), lease):
            if replay.id in self._replays:
                continue
            sub = await asyncio.to_thread(self._store.get, replay.subscription_id)
            if sub is None or sub.status == "deleted":
                error = "subscription deleted"
                await asyncio.to_thread(self.log.fail_replay, replay.id, error, self._clock.now())
                continue
            self._replays[replay.id] = asyncio.create_task(
                ReplayRun(
                    replay,
                    sub,
                    bus=self._bus,
                    store=self._store,
                    log=self.log,
                    client=client,
                    clock=self._clock,
                    prefix=self._prefix,
                    tuning=self._tuning,
                    owner=self._owner,
                    stop=stop,
                    targets=self._targets,
                ).run(),
                name=f"webhook-replay-{replay.id}",
            )

    async def _prune(self) -> None:
        if time.monotonic() - self._pruned_at < PRUNE_EVERY_S:
            return
        self._pruned_at = time.monotonic()
        cutoff = self._clock.now() - timedelta(days=self._tuning.log_days)
        pruned = await asyncio.to_thread(self.log.prune, cutoff)
        if pruned:
            logger.info("webhook_log_pruned", rows=pruned)

    async def _stop_all(self) -> None:
        tasks = list(self._retiring) + list(self._replays.values())
        self._replays.clear()
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
