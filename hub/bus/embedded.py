"""The embedded event bus: hub.ports.EventBus over an append-only log in one SQLite file.

Zero set-up (what `make demo` and a small hospital run on) and safe for several processes on one
data directory: appends take SQLite's writer lock (`BEGIN IMMEDIATE`), consumer groups are
coordinated through tables in the same file (hub.bus.sqlite_groups), and a publish returns only
after its transaction is fsync'd (WAL, synchronous=FULL).

Differences from Kafka a caller may notice: topics never lose records (retention and compaction
configs are recorded, not enforced), and topics are never created implicitly: publishing to or
manually consuming an unknown topic is an error.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

import structlog

from hub.bus import sqlite_log
from hub.bus.embedded_consumer import EmbeddedConsumer
from hub.bus.partitioner import Partitioner
from hub.bus.sqlite_thread import SqliteThread
from hub.bus.sqlite_watch import EndWatch
from hub.errors import BusError, PublishFailed

if TYPE_CHECKING:
    from collections.abc import Sequence
    from pathlib import Path

    from hub.ports import OutRecord
    from topics.catalogue import TopicSpec

logger = structlog.get_logger()

DEFAULT_FILE_NAME = "bus.sqlite3"


class EmbeddedBus:
    """SQLite-backed EventBus. `path`: the log file (`*.sqlite3`, `*.db`), or a directory for `bus.sqlite3`.

    `session_timeout_s`: a group member silent for this long loses its partitions.
    `heartbeat_interval_s`: how often a member heartbeats and re-evaluates its assignment.
    """

    kind = "embedded"

    def __init__(
        self, path: Path, *, session_timeout_s: float = 10.0, heartbeat_interval_s: float = 1.0
    ) -> None:
        if heartbeat_interval_s <= 0 or session_timeout_s <= 2 * heartbeat_interval_s:
            raise ValueError("need 0 < heartbeat_interval_s and session_timeout_s > 2 * heartbeat_interval_s")
        # A directory (existing, or a path without a file suffix such as the data dir) holds bus.sqlite3.
        self.path = path / DEFAULT_FILE_NAME if path.is_dir() or not path.suffix else path
        self._session_timeout_s = session_timeout_s
        self._heartbeat_interval_s = heartbeat_interval_s
        self._writer = SqliteThread(self.path, "hub-bus-writer")
        self._partitioner = Partitioner()
        self._consumers: set[EmbeddedConsumer] = set()
        # Idle consumers of this bus wait on one reader of partition ends (hub.bus.sqlite_watch).
        self._watch = EndWatch(SqliteThread(self.path, "hub-bus-watch"))

    async def start(self) -> None:
        await self._writer.open()
        logger.info("bus_started", kind=self.kind, path=str(self.path))

    async def close(self) -> None:
        """Close the consumers this bus made, then the writer connection."""
        consumers, self._consumers = self._consumers, set()
        try:
            for consumer in consumers:
                await consumer.close()
        finally:
            await self._watch.close()
            await self._writer.close()

    async def ensure_topics(self, specs: Sequence[TopicSpec], prefix: str = "") -> list[str]:
        wanted = [(spec.full_name(prefix), spec.partitions, spec.configs()) for spec in specs]
        for name, partitions, _ in wanted:
            if partitions < 1:
                raise BusError(f"topic {name!r} needs at least one partition")
        created = await self._writer.call(sqlite_log.create_topics, wanted)
        if created:
            logger.info("topics_created", kind=self.kind, count=len(created))
        return created

    async def list_topics(self) -> dict[str, int]:
        return await self._writer.call(sqlite_log.list_topics)

    async def publish(self, topic: str, records: Sequence[OutRecord]) -> list[tuple[int, int]]:
        if not records:
            return []
        try:
            placed = await self._writer.call(sqlite_log.append, self._partitioner, topic, records)
        except PublishFailed:
            raise
        except BusError as exc:
            raise PublishFailed(f"publish to {topic!r} was not stored: {exc}") from exc
        self._watch.poke()
        return placed

    async def consumer(
        self,
        topics: Sequence[str],
        *,
        group: str | None = None,
        from_beginning: bool = True,
        client_id: str | None = None,
    ) -> EmbeddedConsumer:
        if not topics:
            raise ValueError("a consumer reads at least one topic")
        member_id = f"{client_id or 'consumer'}-{uuid.uuid4().hex[:12]}"
        consumer = EmbeddedConsumer(
            SqliteThread(self.path, f"hub-bus-{member_id}"),
            topics,
            group=group,
            from_beginning=from_beginning,
            member_id=member_id,
            heartbeat_interval_s=self._heartbeat_interval_s,
            session_timeout_s=self._session_timeout_s,
            watch=self._watch,
        )
        try:
            await consumer.start()
        except BaseException:
            await consumer.close()
            raise
        self._consumers = {c for c in self._consumers if not c.closed}
        self._consumers.add(consumer)
        return consumer

    async def end_offsets(self, topic: str) -> dict[int, int]:
        return await self._writer.call(sqlite_log.end_offsets, topic)
