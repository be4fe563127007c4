"""Consumer of the Kafka bus (hub.ports.Consumer over AIOKafkaConsumer) and seeking by time.

Group mode: enable_auto_commit=False, offsets are committed only by `commit()`, after processing.
Manual mode (no group): every partition of the topics is assigned; nothing can be committed.

Seeking by time asks the broker (`offsets_for_times`, answered from its time index) and checks
the answer by reading the record it points at: it must exist, carry the timestamp the broker
named, and not be older than the target. A broker without a time index fails that check (Tansu
answers offset 0 with a made-up timestamp), and then the partitions are scanned from the start
for the first record at or after the target: correct everywhere, linear in the partition size.

A log that comes back shorter than where a consumer was (a cluster restored empty or from an
older backup, a topic deleted and made again) makes the broker answer "offset out of range", and
aiokafka then moves the position back to the start of the log without telling. `poll` notices a
partition whose records start below the position it expected (no seek and no rebalance in
between) and logs `kafka_log_rewound`: offsets on such a log name other records than before, so a
reader that keeps its own offsets (the projections) must be rebuilt from the log. A log that came
back and grew past the old position before anyone read it cannot be told apart by offsets at all.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import structlog
from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import KafkaError

from hub.bus.kafka_records import bus_record
from hub.errors import BusError
from hub.ports import BusRecord
from hub.ports import TopicPartition as PortTopicPartition

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

logger = structlog.get_logger()

SCAN_IDLE_MS = 1_000  # a scan that receives nothing for this long has read every partition to its end
SCAN_BATCH = 5_000


class TimeSeeker:
    """Finds, per partition, the first offset whose record timestamp is >= a target time.

    Owns a manually assigned helper consumer (`probe`), so checking and scanning never disturb
    the fetch positions of the consumer that asked. Calls are serialised by a lock.
    """

    def __init__(self, probe: AIOKafkaConsumer) -> None:
        self.probe = probe
        self._lock = asyncio.Lock()

    async def offsets(
        self, partitions: Sequence[TopicPartition], timestamp_ms: int
    ) -> dict[TopicPartition, int]:
        if not partitions:
            return {}
        async with self._lock:
            try:
                answered = await self.probe.offsets_for_times(dict.fromkeys(partitions, timestamp_ms))
                ends = await self.probe.end_offsets(list(partitions))
                result: dict[TopicPartition, int] = {}
                doubtful: list[TopicPartition] = []
                for tp in partitions:
                    found = answered.get(tp)
                    if found is None:  # the broker says no record is that recent
                        result[tp] = ends[tp]
                    elif await self._confirms(tp, found.offset, found.timestamp, timestamp_ms):
                        result[tp] = found.offset
                    else:
                        doubtful.append(tp)
                if doubtful:
                    logger.info(
                        "time_seek_scanning", partitions=len(doubtful), reason="broker has no time index"
                    )
                    result.update(await self._scan(doubtful, timestamp_ms))
            except KafkaError as exc:
                raise BusError(f"seek to timestamp failed: {exc}") from exc
            finally:
                self.probe.assign([])
        return result

    async def _confirms(
        self, tp: TopicPartition, offset: int, answered_ts: int | None, target_ms: int
    ) -> bool:
        if answered_ts is None or answered_ts < target_ms:
            return False
        self.probe.assign([tp])
        self.probe.seek(tp, offset)
        fetched = await self.probe.getmany(tp, timeout_ms=SCAN_IDLE_MS, max_records=1)
        records = fetched.get(tp, [])
        return bool(records) and records[0].offset == offset and records[0].timestamp == answered_ts

    async def _scan(self, partitions: Sequence[TopicPartition], target_ms: int) -> dict[TopicPartition, int]:
        self.probe.assign(list(partitions))
        await self.probe.seek_to_beginning(*partitions)
        result: dict[TopicPartition, int] = {}
        remaining = set(partitions)
        while remaining:
            fetched = await self.probe.getmany(*remaining, timeout_ms=SCAN_IDLE_MS, max_records=SCAN_BATCH)
            if not fetched:
                # Nothing arrived for a whole idle period: every remaining partition is read to its end.
                for tp in remaining:
                    result[tp] = await self.probe.position(tp)
                break
            for tp, records in fetched.items():
                hit = next((r.offset for r in records if r.timestamp >= target_ms), None)
                if hit is not None and tp in remaining:
                    result[tp] = hit
                    remaining.discard(tp)
        return result


class ReadPositions(ConsumerRebalanceListener):  # type: ignore[misc]  # aiokafka ships no types for it
    """The offset each partition's next record should have, forgotten on every rebalance.

    A group consumer's position legitimately goes back after a rebalance (to the committed offset,
    below records read but not committed), so a rebalance clears what the consumer expected.
    """

    def __init__(self) -> None:
        self.expected: dict[TopicPartition, int] = {}

    async def on_partitions_revoked(self, _revoked: object) -> None:
        self.expected.clear()

    async def on_partitions_assigned(self, _assigned: object) -> None:
        self.expected.clear()


class KafkaConsumer:
    """hub.ports.Consumer over aiokafka. Create it with `KafkaBus.consumer`."""

    def __init__(
        self,
        consumer: AIOKafkaConsumer,
        *,
        group: str | None,
        seeker: TimeSeeker,
        positions: ReadPositions | None = None,
    ) -> None:
        self.group = group
        self._consumer = consumer
        self._seeker = seeker
        self._positions = positions or ReadPositions()  # a group consumer's is its rebalance listener
        self._closed = False

    @property
    def closed(self) -> bool:
        return self._closed

    def _assigned(self, tp: PortTopicPartition) -> TopicPartition:
        kafka_tp = TopicPartition(*tp)
        if kafka_tp not in self._consumer.assignment():
            raise BusError(f"partition {tp[0]}[{tp[1]}] is not assigned to this consumer")
        return kafka_tp

    async def poll(self, max_records: int = 500, timeout_s: float = 1.0) -> list[BusRecord]:
        if max_records < 1:
            raise ValueError("max_records must be at least 1")
        try:
            fetched = await self._consumer.getmany(timeout_ms=int(timeout_s * 1000), max_records=max_records)
        except KafkaError as exc:
            raise BusError(f"poll failed: {exc}") from exc
        expected = self._positions.expected
        polled: list[BusRecord] = []
        for tp in sorted(fetched) if len(fetched) > 1 else fetched:
            records = fetched[tp]
            if records[0].offset < expected.get(tp, 0):  # one look per partition, not per record
                self._rewound(tp, expected[tp], records[0].offset)
            expected[tp] = records[-1].offset + 1
            if type(records[0]) is not BusRecord:  # unpacked by aiokafka itself (see kafka_records)
                records = [bus_record(tp, rec) for rec in records]
            if not polled:
                polled = records
            else:
                polled += records
        return polled

    def _rewound(self, tp: TopicPartition, expected: int, first: int) -> None:
        logger.warning(
            "kafka_log_rewound",
            topic=tp.topic,
            partition=tp.partition,
            expected_offset=expected,
            first_offset=first,
            group=self.group,
            hint="the broker's log is shorter than this consumer's position: the cluster lost or "
            "replaced its log (restored empty or from a backup, topic made again). Offsets now name "
            "other records; rebuild the read models from the log (hub replay rebuild).",
        )

    async def commit(self, offsets: Mapping[PortTopicPartition, int] | None = None) -> None:
        if self.group is None:
            raise BusError("commit needs a consumer group; this consumer is manually assigned")
        explicit = None if offsets is None else {self._assigned(tp): off for tp, off in offsets.items()}
        try:
            await self._consumer.commit(explicit)
        except KafkaError as exc:  # CommitFailedError after a rebalance, broker errors
            raise BusError(f"commit rejected: {exc}") from exc

    async def committed(self, tp: PortTopicPartition) -> int | None:
        if self.group is None:
            return None
        try:
            offset = await self._consumer.committed(TopicPartition(*tp))
        except KafkaError as exc:
            raise BusError(f"reading the committed offset failed: {exc}") from exc
        return None if offset is None else int(offset)

    async def seek(self, tp: PortTopicPartition, offset: int) -> None:
        if offset < 0:
            raise ValueError(f"offsets are >= 0, got {offset}")
        kafka_tp = self._assigned(tp)
        self._consumer.seek(kafka_tp, offset)
        self._positions.expected[kafka_tp] = offset

    async def seek_to_beginning(self) -> None:
        self._positions.expected.clear()
        try:
            await self._consumer.seek_to_beginning()
        except KafkaError as exc:
            raise BusError(f"seek to beginning failed: {exc}") from exc

    async def seek_to_timestamp(self, timestamp_ms: int) -> None:
        partitions = sorted(self._consumer.assignment())
        found = await self._seeker.offsets(partitions, timestamp_ms)
        for tp, offset in found.items():
            self._consumer.seek(tp, offset)
            self._positions.expected[tp] = offset

    def assignment(self) -> frozenset[PortTopicPartition]:
        return frozenset((tp.topic, tp.partition) for tp in self._consumer.assignment())

    async def lag(self) -> dict[PortTopicPartition, int]:
        """End offset minus position per assigned partition, from the broker's high watermark.

        Only as right as the broker's end offsets: on the Tansu test broker they are low (see
        TEST-BROKER.md), so lag reads low there.
        """
        partitions = sorted(self._consumer.assignment())
        try:
            ends = await self._consumer.end_offsets(partitions)
            return {
                (tp.topic, tp.partition): max(0, int(ends[tp]) - int(await self._consumer.position(tp)))
                for tp in partitions
            }
        except KafkaError as exc:
            raise BusError(f"lag failed: {exc}") from exc

    async def close(self) -> None:
        """Leave the group (no commit: enable_auto_commit is off) and close the connection."""
        if self._closed:
            return
        self._closed = True
        await self._consumer.stop()
