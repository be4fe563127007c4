"""Outbox relay: moves archived raw messages onto `raw.<system>.v1`.

Ingest answers senders once the archive has the bytes; the relay publishes them when the bus
is reachable. While it is not, the backlog waits in the archive and ingest keeps working.

Where the archive hands over what it just committed (SQLite: hub.ingest.fresh), the relay takes
new records from memory instead of reading them back, and sweeps the archive's outbox at start,
after the feed overflowed or a publish failed, while a sweep found a backlog, when the feed is
empty (records another process stored on the same archive), and at least every SWEEP_S.
"""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from typing import TYPE_CHECKING

import structlog

from hub.errors import BusError
from hub.ingest.rawtopic import encode_raw
from topics.catalogue import raw_topic

if TYPE_CHECKING:
    from hub.ingest.fresh import FreshFeed
    from hub.ports import EventBus, OutRecord, RawOutbox, RawRecord

logger = structlog.get_logger()
SWEEP_S = 1.0  # the archive's outbox is read at least this often while the fresh feed is used


class OutboxRelay:
    def __init__(self, archive: RawOutbox, bus: EventBus, *, prefix: str = "") -> None:
        self._archive = archive
        self._bus = bus
        self._prefix = prefix
        self._feed: FreshFeed | None = getattr(archive, "fresh", None)
        self._swept_at: float | None = None  # None: sweep next (at start, or a backlog is left)

    async def _next(self, limit: int) -> list[tuple[RawRecord, bytes | None]]:
        """The next records to publish: from the fresh feed, or a sweep of the archive's outbox."""
        feed = self._feed
        if feed is None:
            return await self._archive.unpublished(limit)
        feed.follow()  # from now on each commit hands its records over; the sweep covers before
        sweep = self._swept_at is None or feed.lost or time.monotonic() - self._swept_at >= SWEEP_S
        if not sweep and (taken := feed.take(limit)):
            return taken
        pending = await self._archive.unpublished(limit)
        feed.forget(record.raw_ref for record, _ in pending)  # they go out from this sweep
        self._swept_at = None if len(pending) >= limit else time.monotonic()
        return pending

    async def publish_pending(self, limit: int = 500) -> int:
        """Publish one batch of the backlog; returns how many records went out. Raises BusError."""
        pending = await self._next(limit)
        if not pending:
            return 0
        by_topic: dict[str, list[OutRecord]] = defaultdict(list)
        refs: dict[str, list[str]] = defaultdict(list)
        for record, payload in pending:
            topic = raw_topic(record.system).full_name(self._prefix)
            by_topic[topic].append(encode_raw(record, payload))
            refs[topic].append(record.raw_ref)
        try:
            for topic, records in by_topic.items():
                await self._bus.publish(topic, records)
                await self._archive.mark_published(refs[topic])
        except BaseException:
            # What was taken from the fresh feed is only in the archive now: sweep for it next.
            self._swept_at = None
            raise
        return len(pending)

    async def drain(self) -> int:
        total = 0
        while n := await self.publish_pending():
            total += n
        return total

    async def run_forever(
        self, stop: asyncio.Event, *, idle_s: float = 0.2, max_backoff_s: float = 30.0
    ) -> None:
        backoff = 1.0
        while not stop.is_set():
            try:
                n = await self.publish_pending()
                backoff = 1.0
            except (BusError, OSError, ConnectionError) as exc:
                # The broker is away: keep the backlog in the archive, try again later.
                logger.warning("raw_relay_deferred", error=str(exc), retry_in_s=backoff)
                n = 0
                await _wait(stop, backoff)
                backoff = min(backoff * 2, max_backoff_s)
                continue
            if n == 0:
                await _wait(stop, idle_s)


async def _wait(stop: asyncio.Event, seconds: float) -> None:
    try:
        await asyncio.wait_for(stop.wait(), timeout=seconds)
    except TimeoutError:
        return
