"""Feeds projections from the bus: poll once, decode once, apply together exactly once, then commit.

One runner serves a set of projections that share one read-model engine (hub.bootstrap wires one
for all of them): one consumer group, one poller, each record decoded once and shared by every
projection on its topic, and a batch applied to all of them in ONE write transaction (one lock,
one commit) with each projection's tracking rows. A runner of one projection is the same thing
with a set of one (a rebuild, a test, the audit CLI's ledger).

The database is the truth about where each projection is: on every (re)assignment the runner
seeks each new partition to the lowest position the projections reading it recorded in
`projection_tracking` (+1), whatever the bus's group commit says; each projection then skips
what it applied already. The bus commit happens after the database commit and is only advisory
(it makes lag visible to Kafka tooling). A record that is not an event is recorded as poison by
`apply_once` and skipped; any other error (database down, a bug in a projection) propagates: the
runner crashes and its supervisor (hub.pipeline) restarts it, resuming from the database. When
the shared transaction fails, each projection applies the batch in a transaction of its own, so
one failing projection does not hold back the others; an event a projection itself keeps failing
on (not the database) is recorded as poison for that projection alone after POISON_AFTER attempts.

Database work is blocking (sync SQLAlchemy, see projections.runtime.db) and runs in `asyncio.to_thread`.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, cast

import structlog
from sqlalchemy import text
from sqlalchemy.exc import DisconnectionError, InterfaceError, OperationalError

from hub.faults import fault_point
from hub.ports import BusError, OutRecord, SystemClock
from projections.runtime.base import Ticking
from projections.runtime.db import write_transaction
from projections.runtime.decode import decode_all
from projections.runtime.derived import Staged, mark_published, pending, stage
from projections.runtime.tracking import (
    ApplyOutcome,
    apply_batch,
    apply_together,
    ensure_tables,
    poison_record,
    tracked_offsets,
)

if TYPE_CHECKING:
    from collections.abc import Sequence
    from datetime import datetime

    from sqlalchemy import Engine

    from hub.ports import BusRecord, Clock, Consumer, EventBus, TopicPartition
    from projections.runtime.base import Projection
    from projections.runtime.decode import Decoded

logger = structlog.get_logger()

FOREVER_POLL_TIMEOUT_S = 0.5  # how quickly run_forever notices `stop` when the topics are quiet
POISON_AFTER = 3  # failed attempts of one event (across restarts) before it is recorded as poison
# The database or the connection failed, not the event: never a reason to skip an event.
UNREACHABLE = (OperationalError, InterfaceError, DisconnectionError)


def group_name(projections: Sequence[Projection]) -> str:
    """`projection.<name>` for one projection; `projections.<a>.<b>...` (sorted) for a set.

    The set is in the name because a group's members split its partitions: a member running
    other projections would leave them without the partitions it was handed. Dots, not another
    separator: Kafka allows only [a-zA-Z0-9._-] in the static member ids built from it.
    """
    names = sorted(p.name for p in projections)
    return f"projection.{names[0]}" if len(names) == 1 else "projections." + ".".join(names)


class ProjectionRunner:
    """Runs `projections` (one, or a set sharing `engine`) in one consumer group on their prefixed topics."""

    def __init__(
        self,
        projections: Projection | Sequence[Projection],
        bus: EventBus,
        engine: Engine,
        *,
        prefix: str = "",
        batch_size: int = 1000,
        clock: Clock | None = None,
        publish_derived: bool = True,
        tick_interval_s: float = 30.0,
    ) -> None:
        self.projections: tuple[Projection, ...] = (
            tuple(cast("Sequence[Projection]", projections))
            if isinstance(projections, list | tuple)
            else (cast("Projection", projections),)
        )
        names = [p.name for p in self.projections]
        if not names or len(set(names)) != len(names):
            raise ValueError(f"a runner needs distinct projections, got {names}")
        self.bus = bus
        self.engine = engine
        self.batch_size = batch_size
        self.group = group_name(self.projections)
        self.prefix = prefix
        # Prefixed topic -> the projections reading it, in wiring order.
        self._readers: dict[str, tuple[Projection, ...]] = {}
        for projection in self.projections:
            for topic in projection.topics:
                key = f"{prefix}{topic}"
                self._readers[key] = (*self._readers.get(key, ()), projection)
        self.topics = tuple(self._readers)
        self.clock: Clock = clock or SystemClock()
        self.publish_derived = publish_derived
        self.tick_interval_s = tick_interval_s
        self._consumer: Consumer | None = None
        self._assigned: frozenset[TopicPartition] = frozenset()
        # (projection, topic, partition, offset) -> failures of that projection on that record
        self._attempts: dict[tuple[str, str, int, int], int] = {}

    @property
    def projection(self) -> Projection:
        """The projection of a runner of one."""
        if len(self.projections) != 1:
            raise TypeError(f"runner {self.group} runs {len(self.projections)} projections")
        return self.projections[0]

    async def start(self) -> None:
        """Create the tables and join the consumer group (idempotent)."""
        if self._consumer is not None:
            return
        await asyncio.to_thread(ensure_tables, self.engine, self.projections)
        self._consumer = await self.bus.consumer(
            self.topics, group=self.group, from_beginning=True, client_id=self.group
        )
        await self._seek_new_partitions(self._consumer)

    async def run_until_idle(
        self, idle_polls: int = 1, timeout_s: float = 0.2, *, idle_when_caught_up: bool = False
    ) -> int:
        """Apply until `idle_polls` consecutive polls return nothing; return how many events were applied
        (summed over the projections).

        `idle_when_caught_up`: an empty poll with no lag on the assigned partitions counts as idle at
        once instead of waiting `timeout_s` for records (the embedded log: what was published is
        readable already, so waiting for more only costs time).
        """
        applied = idle = 0
        while idle < idle_polls:
            step = await self._step(0.0 if idle_when_caught_up else timeout_s)
            if step is None and idle_when_caught_up and await self._consumer_lag() > 0:
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
        """Let time-aware projections conclude what time alone makes true; publish what is staged."""
        staged = 0
        now = self.clock.now()
        for projection in self.projections:
            if isinstance(projection, Ticking):
                staged += await asyncio.to_thread(self._tick_sync, projection, now)
        await self.publish_staged()
        return staged

    def _tick_sync(self, projection: Ticking, now: datetime) -> int:
        name = projection.name  # type: ignore[attr-defined]  # a Ticking is also a Projection
        with write_transaction(self.engine, read_model=True) as conn:
            derived = projection.tick(conn, now)
            return stage(conn, name, derived) if derived else 0

    async def publish_staged(self, projections: Sequence[Projection] | None = None) -> int:
        """Publish derived events staged by earlier transactions, then mark them published."""
        if not self.publish_derived:
            return 0
        total = 0
        for projection in self.projections if projections is None else projections:
            total += await self._publish_staged_of(projection.name)
        return total

    async def _publish_staged_of(self, name: str) -> int:
        total = 0
        while batch := await asyncio.to_thread(self._pending, name):
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
            await asyncio.to_thread(self._mark, name, [r.event_id for r in batch])
            total += len(batch)
        return total

    def _pending(self, name: str) -> list[Staged]:
        with self.engine.connect() as conn:
            return pending(conn, name)

    def _mark(self, name: str, event_ids: list[str]) -> None:
        with write_transaction(self.engine, read_model=True) as conn:
            mark_published(conn, name, event_ids)

    async def lag(self) -> int:
        """Records on the runner's topics not yet applied, summed over its projections."""
        return sum((await self.lags()).values())

    async def lags(self) -> dict[str, int]:
        """Per projection: records on its topics not yet applied.

        From the consumer once started (its position is the one every projection of the set
        reached); before that, end offsets against each projection's tracking in the database.
        """
        if self._consumer is not None:
            by_tp = await self._consumer.lag()
            out = dict.fromkeys((p.name for p in self.projections), 0)
            for (topic, _), n in by_tp.items():
                for p in self._readers.get(topic, ()):
                    out[p.name] += n
            return out
        tracked = await asyncio.to_thread(self._tracked)
        out = dict.fromkeys((p.name for p in self.projections), 0)
        for topic, readers in self._readers.items():
            for partition, end in (await self.bus.end_offsets(topic)).items():
                for p in readers:
                    out[p.name] += max(0, end - (tracked[p.name].get((topic, partition), -1) + 1))
        return out

    async def _consumer_lag(self) -> int:
        return 0 if self._consumer is None else sum((await self._consumer.lag()).values())

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

    def _split(self, records: Sequence[BusRecord]) -> list[tuple[Projection, list[BusRecord]]]:
        """Each projection with the records of the batch on its topics, in order."""
        mine: dict[str, list[BusRecord]] = {p.name: [] for p in self.projections}
        for record in records:
            for projection in self._readers.get(record.topic, ()):
                mine[projection.name].append(record)
        return [(p, mine[p.name]) for p in self.projections if mine[p.name]]

    async def _apply(self, consumer: Consumer, records: list[BusRecord]) -> int:
        started = time.perf_counter()
        batches = self._split(records)
        # Decoded once for every projection, and before the write lock is taken.
        decoded = await asyncio.to_thread(decode_all, records)
        failure: Exception | None = None
        try:
            outcomes = await asyncio.to_thread(apply_together, self.engine, batches, decoded)
        except UNREACHABLE:
            raise
        except Exception:  # noqa: BLE001 - find the projection and the event that fail; apply the others
            outcomes, failure = await self._apply_apart(batches, decoded)
        if failure is None:
            await self._commit(consumer, outcomes)
        derived = [p for p, _ in batches if p.name in outcomes and outcomes[p.name].derived]
        if derived:
            await self.publish_staged(derived)
        logger.info(
            "projection_batch_applied",
            group=self.group,
            records=len(records),
            applied=sum(o.applied for o in outcomes.values()),
            redelivered=sum(o.redelivered for o in outcomes.values()),
            duplicates=sum(o.duplicates for o in outcomes.values()),
            poisoned=sum(o.poisoned for o in outcomes.values()),
            by_projection={name: o.applied for name, o in outcomes.items()},
            duration_ms=round((time.perf_counter() - started) * 1000, 1),
        )
        if failure is not None:
            raise failure
        return sum(o.applied for o in outcomes.values())

    async def _commit(self, consumer: Consumer, outcomes: dict[str, ApplyOutcome]) -> None:
        """Advisory, after the database commit: per partition, the position every projection reached.

        A partition revoked while the batch was applied belongs to another member now: committing
        it would be refused, and is not ours to do.
        """
        reached: dict[TopicPartition, int] = {}
        for outcome in outcomes.values():
            for tp, offset in outcome.positions.items():
                reached[tp] = min(offset, reached.get(tp, offset))
        assigned = consumer.assignment()
        try:
            await consumer.commit({tp: off + 1 for tp, off in reached.items() if tp in assigned})
        except BusError as exc:
            # The database holds the truth; the next owner seeks from it. Nothing to repair.
            logger.warning("projection_commit_rejected", group=self.group, error=str(exc))

    async def _apply_apart(
        self, batches: list[tuple[Projection, list[BusRecord]]], decoded: Decoded
    ) -> tuple[dict[str, ApplyOutcome], Exception | None]:
        """The shared transaction failed: each projection applies in transactions of its own, so
        the others go on past an event one of them fails on. Returns the outcomes and the first
        failure to re-raise once the others committed (the supervisor restarts the runner)."""
        outcomes: dict[str, ApplyOutcome] = {}
        failure: Exception | None = None
        for projection, records in batches:
            try:
                outcomes[projection.name] = await asyncio.to_thread(
                    apply_batch, self.engine, projection, records, decoded
                )
                continue
            except UNREACHABLE:
                raise
            except Exception:  # noqa: BLE001, S110 - the records one by one below find the event that fails
                pass  # nosec B110
            try:
                outcomes[projection.name] = await self._apply_singly(projection, records, decoded)
            except UNREACHABLE:
                raise
            except Exception as exc:  # noqa: BLE001 - raised once the other projections applied
                failure = failure or exc
        return outcomes, failure

    async def _apply_singly(
        self, projection: Projection, records: list[BusRecord], decoded: Decoded
    ) -> ApplyOutcome:
        """Apply one record per transaction, in order. A record that fails is retried: the error
        propagates (the supervisor restarts the runner, which resumes from the database) until the
        same record failed POISON_AFTER times for this projection; then it is recorded as poison
        for it and the partition flows on. Nothing is skipped while the database is unreachable."""
        total = ApplyOutcome()
        for record in records:
            try:
                one = await asyncio.to_thread(apply_batch, self.engine, projection, [record], decoded)
            except UNREACHABLE:
                raise
            except Exception as exc:
                where = (projection.name, record.topic, record.partition, record.offset)
                self._attempts[where] = attempts = self._attempts.get(where, 0) + 1
                if attempts < POISON_AFTER or not await asyncio.to_thread(self._database_answers):
                    logger.warning(
                        "projection_event_failed",
                        projection=projection.name,
                        topic=record.topic,
                        partition=record.partition,
                        offset=record.offset,
                        attempts=attempts,
                        error=type(exc).__name__,
                    )
                    raise
                error = f"{type(exc).__name__}: {exc} (failed {attempts} times)"
                one = await asyncio.to_thread(poison_record, self.engine, projection, record, error)
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
        """Seek partitions assigned since the last look to the lowest position the projections
        reading them recorded in the database; return them."""
        current = consumer.assignment()
        new = current - self._assigned
        self._assigned = current
        if new:
            tracked = await asyncio.to_thread(self._tracked)
            for tp in sorted(new):
                readers = self._readers.get(tp[0], ())
                await consumer.seek(tp, min((tracked[p.name].get(tp, -1) + 1 for p in readers), default=0))
            logger.info(
                "projection_partitions_assigned",
                group=self.group,
                partitions=[f"{topic}:{partition}" for topic, partition in sorted(new)],
            )
        return new

    def _tracked(self) -> dict[str, dict[TopicPartition, int]]:
        with self.engine.connect() as conn:
            return {p.name: tracked_offsets(conn, p.name) for p in self.projections}
