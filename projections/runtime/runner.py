"""Feeds one projection from the bus: poll, apply exactly once in the database, then commit.

The database is the truth about where a projection is: on every (re)assignment the runner
seeks each new partition to the offset after the one recorded in `projection_tracking`, whatever
the bus's group commit says. The bus commit happens after the database commit and is only
advisory (it makes lag visible to Kafka tooling). A record that is not an event is recorded as
poison by `apply_once` and skipped; any other error (database down, a bug in a projection)
propagates: the runner crashes and its supervisor (hub.pipeline) restarts it, resuming from the
database. An event the projection itself keeps failing on (not the database) is recorded as
poison after POISON_AFTER attempts, so one bad event cannot block its partition.

Database work is blocking (sync SQLAlchemy, see projections.runtime.db) and runs in `asyncio.to_thread`.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING

import structlog
from sqlalchemy import text
from sqlalchemy.exc import DisconnectionError, InterfaceError, OperationalError

from hub.faults import fault_point
from hub.ports import BusError, OutRecord, SystemClock
from projections.runtime.base import Ticking
from projections.runtime.db import write_transaction
from projections.runtime.derived import Staged, mark_published, pending, stage
from projections.runtime.tracking import (
    ApplyOutcome,
    apply_batch,
    ensure_tables,
    poison_record,
    tracked_offsets,
)

if TYPE_CHECKING:
    from datetime import datetime

    from sqlalchemy import Engine

    from hub.ports import BusRecord, Clock, Consumer, EventBus, TopicPartition
    from projections.runtime.base import Projection

logger = structlog.get_logger()

FOREVER_POLL_TIMEOUT_S = 0.5  # how quickly run_forever notices `stop` when the topics are quiet
POISON_AFTER = 3  # failed attempts of one event (across restarts) before it is recorded as poison
# The database or the connection failed, not the event: never a reason to skip an event.
UNREACHABLE = (OperationalError, InterfaceError, DisconnectionError)


class ProjectionRunner:
    """Runs `projection` in consumer group `projection.<name>` on its prefixed topics."""

    def __init__(
        self,
        projection: Projection,
        bus: EventBus,
        engine: Engine,
        *,
        prefix: str = "",
        batch_size: int = 1000,
        clock: Clock | None = None,
        publish_derived: bool = True,
        tick_interval_s: float = 30.0,
    ) -> None:
        self.projection = projection
        self.bus = bus
        self.engine = engine
        self.batch_size = batch_size
        self.group = f"projection.{projection.name}"
        self.topics = tuple(f"{prefix}{topic}" for topic in projection.topics)
        self.prefix = prefix
        self.clock: Clock = clock or SystemClock()
        self.publish_derived = publish_derived
        self.tick_interval_s = tick_interval_s
        self._consumer: Consumer | None = None
        self._assigned: frozenset[TopicPartition] = frozenset()
        self._attempts: dict[tuple[str, int, int], int] = {}  # (topic, partition, offset) -> failures

    async def start(self) -> None:
        """Create the tables and join the consumer group (idempotent)."""
        if self._consumer is not None:
            return
        await asyncio.to_thread(ensure_tables, self.engine, self.projection)
        self._consumer = await self.bus.consumer(
            self.topics, group=self.group, from_beginning=True, client_id=self.group
        )
        await self._seek_new_partitions(self._consumer)

    async def run_until_idle(self, idle_polls: int = 1, timeout_s: float = 0.2) -> int:
        """Apply until `idle_polls` consecutive polls return nothing; return how many events were applied."""
        applied = idle = 0
        while idle < idle_polls:
            step = await self._step(timeout_s)
            if step is None:
                idle += 1
            else:
                idle = 0
                applied += step
        await self.tick()
        return applied

    async def run_forever(self, stop: asyncio.Event) -> None:
        """Apply until `stop` is set. Errors other than poison propagate (let the supervisor restart)."""
        next_tick = 0.0
        loop = asyncio.get_running_loop()
        while not stop.is_set():
            await self._step(FOREVER_POLL_TIMEOUT_S)
            if loop.time() >= next_tick:
                await self.tick()
                next_tick = loop.time() + self.tick_interval_s

    async def tick(self) -> int:
        """Let a time-aware projection conclude what time alone makes true; publish what is staged."""
        staged = 0
        if isinstance(self.projection, Ticking):
            staged = await asyncio.to_thread(self._tick_sync, self.clock.now())
        await self.publish_staged()
        return staged

    def _tick_sync(self, now: datetime) -> int:
        if not isinstance(self.projection, Ticking):
            return 0
        with write_transaction(self.engine) as conn:
            derived = self.projection.tick(conn, now)
            return stage(conn, self.projection.name, derived) if derived else 0

    async def publish_staged(self) -> int:
        """Publish derived events staged by earlier transactions, then mark them published."""
        if not self.publish_derived:
            return 0
        total = 0
        while batch := await asyncio.to_thread(self._pending):
            by_topic: dict[str, list[Staged]] = {}
            for row in batch:
                by_topic.setdefault(f"{self.prefix}{row.topic}", []).append(row)
            for topic, rows in by_topic.items():
                await self.bus.publish(
                    topic,
                    [
                        OutRecord(
                            key=r.key,
                            value=r.value,
                            headers=(
                                ("event_type", r.event_type.encode()),
                                ("event_id", r.event_id.encode()),
                            ),
                        )
                        for r in rows
                    ],
                )
            fault_point("projection.derived_published")
            await asyncio.to_thread(self._mark, [r.event_id for r in batch])
            total += len(batch)
        return total

    def _pending(self) -> list[Staged]:
        with self.engine.connect() as conn:
            return pending(conn, self.projection.name)

    def _mark(self, event_ids: list[str]) -> None:
        with write_transaction(self.engine) as conn:
            mark_published(conn, self.projection.name, event_ids)

    async def lag(self) -> int:
        """Records on the projection's topics not yet applied.

        From the consumer once started; before that, end offsets against the database's tracking.
        """
        if self._consumer is not None:
            return sum((await self._consumer.lag()).values())
        tracked = await asyncio.to_thread(self._tracked)
        total = 0
        for topic in self.topics:
            for partition, end in (await self.bus.end_offsets(topic)).items():
                total += max(0, end - (tracked.get((topic, partition), -1) + 1))
        return total

    async def close(self) -> None:
        """Leave the group. The database already holds everything applied."""
        consumer, self._consumer = self._consumer, None
        self._assigned = frozenset()
        if consumer is not None:
            await consumer.close()

    async def _step(self, timeout_s: float) -> int | None:
        """Poll once and apply. None when the poll returned nothing; else events applied."""
        await self.start()
        consumer = self._consumer
        if consumer is None:  # start() sets it; this narrows the type for mypy
            raise RuntimeError("projection runner has no consumer")
        records = await consumer.poll(max_records=self.batch_size, timeout_s=timeout_s)
        new = await self._seek_new_partitions(consumer)
        if not records:
            return None
        # Records a new assignment delivered came from the bus's idea of the position; they are
        # read again from the database's after the seek above.
        usable = [r for r in records if (r.topic, r.partition) not in new]
        if not usable:
            return 0
        return await self._apply(consumer, usable)

    async def _apply(self, consumer: Consumer, records: list[BusRecord]) -> int:
        started = time.perf_counter()
        try:
            outcome = await asyncio.to_thread(apply_batch, self.engine, self.projection, records)
        except UNREACHABLE:
            raise
        except Exception:  # noqa: BLE001 - find the event that fails; apply the others
            outcome = await self._apply_singly(records)
        # Advisory, after the database commit. A partition revoked while the batch was applied
        # belongs to another member now: committing it would be refused, and is not ours to do.
        assigned = consumer.assignment()
        try:
            await consumer.commit({tp: off + 1 for tp, off in outcome.positions.items() if tp in assigned})
        except BusError as exc:
            # The database holds the truth; the next owner seeks from it. Nothing to repair.
            logger.warning("projection_commit_rejected", projection=self.projection.name, error=str(exc))
        if outcome.derived:
            await self.publish_staged()
        logger.info(
            "projection_batch_applied",
            projection=self.projection.name,
            records=len(records),
            applied=outcome.applied,
            redelivered=outcome.redelivered,
            duplicates=outcome.duplicates,
            poisoned=outcome.poisoned,
            duration_ms=round((time.perf_counter() - started) * 1000, 1),
        )
        return outcome.applied

    async def _apply_singly(self, records: list[BusRecord]) -> ApplyOutcome:
        """Apply one record per transaction, in order. A record that fails is retried: the error
        propagates (the supervisor restarts the runner, which resumes from the database) until the
        same record failed POISON_AFTER times; then it is recorded as poison and the partition
        flows on. Nothing is skipped while the database itself is unreachable."""
        total = ApplyOutcome()
        for record in records:
            try:
                one = await asyncio.to_thread(apply_batch, self.engine, self.projection, [record])
            except UNREACHABLE:
                raise
            except Exception as exc:
                where = (record.topic, record.partition, record.offset)
                self._attempts[where] = attempts = self._attempts.get(where, 0) + 1
                if attempts < POISON_AFTER or not await asyncio.to_thread(self._database_answers):
                    logger.warning(
                        "projection_event_failed",
                        projection=self.projection.name,
                        topic=record.topic,
                        partition=record.partition,
                        offset=record.offset,
                        attempts=attempts,
                        error=type(exc).__name__,
                    )
                    raise
                error = f"{type(exc).__name__}: {exc} (failed {attempts} times)"
                one = await asyncio.to_thread(poison_record, self.engine, self.projection, record, error)
                del self._attempts[where]
            total.applied += one.applied
            total.redelivered += one.redelivered
            total.duplicates += one.duplicates
            total.poisoned += one.poisoned
            total.derived += one.derived
            total.positions.update(one.positions)
        return total

    def _database_answers(self) -> bool:
        try:
            with self.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
        except UNREACHABLE:
            return False
        return True

    async def _seek_new_partitions(self, consumer: Consumer) -> frozenset[TopicPartition]:
        """Seek partitions assigned since the last look to the database's position; return them."""
        current = consumer.assignment()
        new = current - self._assigned
        self._assigned = current
        if new:
            tracked = await asyncio.to_thread(self._tracked)
            for tp in sorted(new):
                await consumer.seek(tp, tracked.get(tp, -1) + 1)
            logger.info(
                "projection_partitions_assigned",
                projection=self.projection.name,
                partitions=[f"{topic}:{partition}" for topic, partition in sorted(new)],
            )
        return new

    def _tracked(self) -> dict[TopicPartition, int]:
        with self.engine.connect() as conn:
            return tracked_offsets(conn, self.projection.name)
