"""Outbox relay: moves archived raw messages onto `raw.<system>.v1`.

Ingest answers senders once the archive has the bytes; the relay publishes them when the bus
is reachable. While it is not, the backlog waits in the archive and ingest keeps working.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from typing import TYPE_CHECKING

import structlog

from hub.errors import BusError
from hub.ingest.rawtopic import encode_raw
from topics.catalogue import raw_topic

if TYPE_CHECKING:
    from hub.ports import EventBus, OutRecord, RawOutbox

logger = structlog.get_logger()


class OutboxRelay:
    def __init__(self, archive: RawOutbox, bus: EventBus, *, prefix: str = "") -> None:
        self._archive = archive
        self._bus = bus
        self._prefix = prefix

    async def publish_pending(self, limit: int = 500) -> int:
        """Publish one batch of the backlog; returns how many records went out. Raises BusError."""
        pending = await self._archive.unpublished(limit)
        if not pending:
            return 0
        by_topic: dict[str, list[OutRecord]] = defaultdict(list)
        refs: dict[str, list[str]] = defaultdict(list)
        for record, payload in pending:
            topic = raw_topic(record.system).full_name(self._prefix)
            by_topic[topic].append(encode_raw(record, payload))
            refs[topic].append(record.raw_ref)
        for topic, records in by_topic.items():
            await self._bus.publish(topic, records)
            await self._archive.mark_published(refs[topic])
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
