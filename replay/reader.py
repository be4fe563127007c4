"""Reading the log for a replay: every partition of some topics, from chosen offsets, in offset order.

A replay never joins a consumer group (it would take partitions away from the live runners): it
reads with a manually assigned consumer, which both buses offer through hub.ports.

Two ways to end a read:
- exact (`settle=False`): stop once every partition has reached its `until` offset; records past
  it are dropped. What a comparison needs: both sides at the same positions.
- to the end (`settle=True`): reach `until` (usually the end offsets the bus reported when the
  replay started), then keep reading until a poll comes back empty or `settle_s` passes. A
  broker whose high watermark lags the records it holds (the Tansu test broker reports the last
  batch's base offset + 1) is still read to its real end, and a busy log still ends.

Records are never deleted from canonical and raw topics (retention.ms=-1, docs/deploy-kafka.md).
If a partition's first record is past the offset asked for, the head of the log is gone, and a
replay from it would silently differ from history: that raises LogIncomplete instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Self, TypeVar

import structlog

from replay.errors import LogIncomplete

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Collection, Mapping, Sequence
    from types import TracebackType

    from hub.ports import BusRecord, Consumer, EventBus, TopicPartition

logger = structlog.get_logger()
T = TypeVar("T")

DEFAULT_BATCH = 5_000
STALL_TIMEOUT_S = 30.0  # no record for this long while offsets are still owed: the log lacks them
SETTLE_S = 10.0  # at most this long reading past the end offsets of a busy log
_POLL_TIMEOUT_S = {"kafka": 1.0}  # a Kafka fetch can take a while to come back empty
_DEFAULT_POLL_TIMEOUT_S = 0.1

Positions = dict["TopicPartition", int]


class LogReader:
    """Manually assigned reader over `topics` (full names, prefix included). Use `async with`."""

    def __init__(
        self,
        bus: EventBus,
        topics: Sequence[str],
        *,
        batch_size: int = DEFAULT_BATCH,
        stall_timeout_s: float = STALL_TIMEOUT_S,
        settle_s: float = SETTLE_S,
    ) -> None:
        if not topics:
            raise ValueError("a replay reads at least one topic")
        self.bus = bus
        self.topics = tuple(dict.fromkeys(topics))
        self.batch_size = batch_size
        self.stall_timeout_s = stall_timeout_s
        self.settle_s = settle_s
        self.poll_timeout_s = _POLL_TIMEOUT_S.get(bus.kind, _DEFAULT_POLL_TIMEOUT_S)
        self._consumer: Consumer | None = None

    async def __aenter__(self) -> Self:
        self._consumer = await self.bus.consumer(
            self.topics, group=None, from_beginning=True, client_id="hub-replay"
        )
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        consumer, self._consumer = self._consumer, None
        if consumer is not None:
            await consumer.close()

    def _open(self) -> Consumer:
        if self._consumer is None:
            raise RuntimeError("LogReader used outside `async with`")
        return self._consumer

    def partitions(self) -> frozenset[TopicPartition]:
        return self._open().assignment()

    async def last_offsets(self) -> Positions:
        """Last offset per partition as the bus reports it now (-1: empty)."""
        out: Positions = {}
        for topic in self.topics:
            for partition, end in (await self.bus.end_offsets(topic)).items():
                out[topic, partition] = end - 1
        return out

    async def read(
        self,
        until: Mapping[TopicPartition, int],
        *,
        start: Mapping[TopicPartition, int] | None = None,
        settle: bool = False,
    ) -> AsyncIterator[list[BusRecord]]:
        """Batches of records of the partitions in `until`, from `start` through `until`.

        `start`: next offset to read per partition (default 0). `until`: the last offset to reach
        per partition, inclusive (-1: nothing owed). Partitions not in `until` are not read. See
        the module docstring for `settle`.
        """
        consumer = self._open()
        start = start or {}
        wanted = {tp: last for tp, last in until.items() if settle or last >= start.get(tp, 0)}
        unknown = set(wanted) - consumer.assignment()
        if unknown:
            raise LogIncomplete(f"partitions {sorted(unknown)} are not in the log")
        positions: Positions = {}
        ends: dict[str, dict[int, int]] = {}
        for tp in sorted(consumer.assignment()):
            if tp in wanted:
                positions[tp] = start.get(tp, 0)
                await consumer.seek(tp, positions[tp])
                continue
            # Not wanted: park it at its end, so polling it costs (next to) nothing.
            if tp[0] not in ends:
                ends[tp[0]] = await self.bus.end_offsets(tp[0])
            await consumer.seek(tp, max(start.get(tp, 0), ends[tp[0]].get(tp[1], 0)))
        async for batch in self._poll(consumer, positions, wanted, settle=settle):
            yield batch

    async def read_from_time(
        self,
        timestamp_ms: int,
        partitions: Collection[TopicPartition] | None = None,
        *,
        idle_polls: int = 2,
    ) -> AsyncIterator[list[BusRecord]]:
        """Batches from the first record at or after `timestamp_ms` (by record time) to the end.

        Every record before that point has an earlier timestamp, so this skips a prefix of the
        log for a lower bound on recorded_at (see replay.as_of for why not an upper bound).
        Kafka answers from its time index; a broker without one (Tansu) makes the bus scan
        (hub.bus.kafka_consumer.TimeSeeker). The end is `idle_polls` empty polls in a row.
        `partitions`: only these (default: all).
        """
        consumer = self._open()
        await consumer.seek_to_timestamp(timestamp_ms)
        wanted = consumer.assignment() if partitions is None else frozenset(partitions)
        ends: dict[str, dict[int, int]] = {}
        for tp in sorted(consumer.assignment() - wanted):
            if tp[0] not in ends:
                ends[tp[0]] = await self.bus.end_offsets(tp[0])
            await consumer.seek(tp, ends[tp[0]].get(tp[1], 0))
        idle = 0
        while idle < idle_polls:
            records = await consumer.poll(max_records=self.batch_size, timeout_s=self.poll_timeout_s)
            idle = 0 if records else idle + 1
            batch = [r for r in records if (r.topic, r.partition) in wanted]
            if batch:
                yield batch

    async def _poll(
        self,
        consumer: Consumer,
        positions: Positions,
        owed: Mapping[TopicPartition, int],
        *,
        settle: bool,
    ) -> AsyncIterator[list[BusRecord]]:
        state = _ReadState(positions, dict(owed), keep_all=settle)
        last_record = time.monotonic()
        settle_deadline: float | None = None
        while True:
            if state.reached():
                if not settle:
                    return
                if settle_deadline is None:
                    settle_deadline = time.monotonic() + self.settle_s
                elif time.monotonic() >= settle_deadline:
                    logger.info("replay_read_settle_timeout", topics=list(self.topics))
                    return
            records = await consumer.poll(max_records=self.batch_size, timeout_s=self.poll_timeout_s)
            if records:
                last_record = time.monotonic()
                batch = state.accept(records)
                if batch:
                    yield batch
            elif settle_deadline is not None:
                return  # owed offsets reached and nothing more arrives: this is the end
            elif time.monotonic() - last_record > self.stall_timeout_s:
                raise LogIncomplete(
                    f"the log ends before these offsets (last owed per partition): {state.missing()}"
                )


async def lookahead(batches: AsyncIterator[T]) -> AsyncIterator[T]:
    """`batches`, with the next one already being fetched while the caller works on the current one.

    A rebuild spends most of its time applying; reading the next batch meanwhile (the bus does
    its I/O on its own thread) takes the read off the critical path.
    """
    iterator = aiter(batches)
    pending: asyncio.Future[T | None] = asyncio.ensure_future(anext(iterator, None))
    try:
        while (batch := await pending) is not None:
            pending = asyncio.ensure_future(anext(iterator, None))
            yield batch
    finally:
        if not pending.done():
            pending.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await pending
        aclose = getattr(iterator, "aclose", None)
        if aclose is not None:
            await aclose()


@dataclass
class _ReadState:
    """Where each read partition is, what is owed, and which partitions have shown their first record."""

    positions: Positions
    owed: dict[TopicPartition, int]
    keep_all: bool
    first_seen: set[TopicPartition] = field(default_factory=set)

    def reached(self) -> bool:
        return all(self.positions[tp] > last for tp, last in self.owed.items())

    def missing(self) -> dict[TopicPartition, int]:
        return {tp: last for tp, last in self.owed.items() if self.positions[tp] <= last}

    def accept(self, records: Sequence[BusRecord]) -> list[BusRecord]:
        batch: list[BusRecord] = []
        for record in records:
            tp = (record.topic, record.partition)
            if tp not in self.positions:
                continue  # a parked partition that received new records
            if tp not in self.first_seen:
                self.first_seen.add(tp)
                if record.offset > self.positions[tp]:
                    raise LogIncomplete(
                        f"{tp[0]}[{tp[1]}] starts at offset {record.offset}, not {self.positions[tp]}: "
                        "older records were deleted (is retention.ms=-1 on this topic?)"
                    )
            self.positions[tp] = record.offset + 1
            if self.keep_all or record.offset <= self.owed[tp]:
                batch.append(record)
        return batch
