"""One contract for hub.ports.EventBus, run against the embedded bus and the Kafka bus.

The Kafka half runs against the Tansu broker the suite starts (tests/fixtures/kafka.py). Where
Tansu differs from Apache Kafka (TEST-BROKER.md) the test says so and asserts what is true on
both: Tansu's end offsets (high watermark) are low, so exact lag is asserted on the embedded bus
only; Tansu has no time index, so seeking by time there exercises the bus's scanning fallback.
Group joins on Tansu take about half the session timeout, so only the group tests join a group.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pytest

from hub.bus import EmbeddedBus, KafkaBus
from hub.bus.partitioner import partition_for_key
from hub.errors import BusError
from hub.ports import BusRecord, Consumer, EventBus, OutRecord
from tests.fixtures.kafka import unique_topic
from topics.catalogue import TopicSpec

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Awaitable, Callable
    from pathlib import Path

T0 = 1_700_000_000_000  # a fixed record time, so time seeks are deterministic


@dataclass
class BusCase:
    """The bus under test, plus a way to open a second, independent instance on the same storage."""

    kind: str
    bus: EventBus
    fresh: Callable[[], Awaitable[EventBus]]
    opened: list[EventBus]

    async def topic(self, partitions: int) -> str:
        name = unique_topic("contract")
        assert await self.bus.ensure_topics([TopicSpec(name, key="id", partitions=partitions)]) == [name]
        return name


@pytest.fixture(params=["embedded", pytest.param("kafka", marks=pytest.mark.kafka)])
async def case(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[BusCase]:
    """A started bus of each kind; closed (with every extra instance) after the test."""
    if request.param == "embedded":
        path = tmp_path / "bus.sqlite3"

        def make() -> EventBus:
            return EmbeddedBus(path, session_timeout_s=3.0, heartbeat_interval_s=0.2)
    else:
        bootstrap = request.getfixturevalue("kafka_bootstrap")

        def make() -> EventBus:
            # A 4 s session timeout keeps Tansu's group joins near 2 s.
            return KafkaBus(
                bootstrap, client_id="contract", session_timeout_ms=4_000, heartbeat_interval_ms=500
            )

    opened: list[EventBus] = []

    async def fresh() -> EventBus:
        bus = make()
        await bus.start()
        opened.append(bus)
        return bus

    bus = await fresh()
    yield BusCase(request.param, bus, fresh, opened)
    for b in reversed(opened):
        await b.close()


async def drain(consumer: Consumer, expected: int, timeout_s: float = 15.0) -> list[BusRecord]:
    """Poll until `expected` records arrived (or the time is up), then once more to catch extras."""
    got: list[BusRecord] = []
    deadline = time.monotonic() + timeout_s
    while len(got) < expected and time.monotonic() < deadline:
        got += await consumer.poll(500, timeout_s=0.5)
    got += await consumer.poll(500, timeout_s=0.3)
    return got


def records(n: int, keys: int = 5, ts0: int = T0) -> list[OutRecord]:
    return [
        OutRecord(key=f"key-{i % keys}", value=f"value-{i}".encode(), timestamp_ms=ts0 + i * 1000)
        for i in range(n)
    ]


class TestTopics:
    async def test_ensure_topics_is_idempotent_and_applies_partitions(self, case: BusCase) -> None:
        """Creating topics twice creates them once, with the partition counts of their specs."""
        a, b = unique_topic("a"), unique_topic("b")
        specs = [TopicSpec(a, key="id", partitions=3), TopicSpec(b, key="id", partitions=1)]
        assert sorted(await case.bus.ensure_topics(specs)) == sorted([a, b])
        assert await case.bus.ensure_topics(specs) == []
        listed = await case.bus.list_topics()
        assert (listed[a], listed[b]) == (3, 1)

    async def test_prefix_is_prepended_to_topic_names(self, case: BusCase) -> None:
        """ensure_topics with a prefix creates `<prefix><name>`."""
        prefix = f"h{uuid.uuid4().hex[:6]}."
        created = await case.bus.ensure_topics(
            [TopicSpec("canonical.asset.v1", key="asset id", partitions=2)], prefix
        )
        assert created == [f"{prefix}canonical.asset.v1"]
        assert (await case.bus.list_topics())[created[0]] == 2


class TestPublish:
    async def test_keyed_records_go_to_the_murmur2_partition_with_consecutive_offsets(
        self, case: BusCase
    ) -> None:
        """Each record lands on murmur2(key) % partitions and each partition's offsets count up from 0."""
        topic = await case.topic(4)
        batch = records(40, keys=7)
        placed = await case.bus.publish(topic, batch)
        assert [p for p, _ in placed] == [partition_for_key(r.key or "", 4) for r in batch]
        per_partition: dict[int, list[int]] = defaultdict(list)
        for partition, offset in placed:
            per_partition[partition].append(offset)
        assert all(offs == list(range(len(offs))) for offs in per_partition.values())

    async def test_published_batch_is_durable_when_publish_returns(self, case: BusCase) -> None:
        """A second, independent bus instance reads back every record of a batch once publish returned."""
        topic = await case.topic(3)
        batch = records(30)
        placed = await case.bus.publish(topic, batch)
        other = await case.fresh()
        consumer = await other.consumer([topic])
        got = await drain(consumer, len(batch))
        assert sorted((r.partition, r.offset, r.value) for r in got) == sorted(
            (p, o, rec.value) for (p, o), rec in zip(placed, batch, strict=True)
        )

    async def test_order_of_one_key_is_preserved(self, case: BusCase) -> None:
        """Records of one key are read back in the order they were published, across several batches."""
        topic = await case.topic(4)
        for start in range(0, 60, 20):
            batch = [OutRecord(key=f"k{i % 3}", value=str(i).encode()) for i in range(start, start + 20)]
            await case.bus.publish(topic, batch)
        consumer = await case.bus.consumer([topic])
        got = await drain(consumer, 60)
        by_key: dict[str | None, list[int]] = defaultdict(list)
        for rec in got:
            by_key[rec.key].append(int(rec.value))
        assert by_key == {f"k{k}": list(range(k, 60, 3)) for k in range(3)}

    async def test_headers_timestamps_and_keys_round_trip(self, case: BusCase) -> None:
        """Headers (in order, bytes intact), explicit timestamps and keys come back as published."""
        topic = await case.topic(1)
        sent = [
            OutRecord(
                key="asset-1",
                value=b"\x00\xff",
                headers=(("type", b"asset.relocated"), ("bin", b"\x00\x01")),
                timestamp_ms=T0 + 5,
            ),
            OutRecord(key=None, value=b"no key, no headers", timestamp_ms=T0 + 6),
        ]
        await case.bus.publish(topic, sent)
        got = await drain(await case.bus.consumer([topic]), 2)
        assert [(r.key, r.value, r.headers, r.timestamp_ms) for r in got] == [
            (s.key, s.value, s.headers, s.timestamp_ms) for s in sent
        ]
        assert got[0].header("type") == b"asset.relocated"

    async def test_publish_without_timestamp_stamps_the_current_time(self, case: BusCase) -> None:
        """A record published without a timestamp carries the publish time."""
        topic = await case.topic(1)
        before = time.time_ns() // 1_000_000
        await case.bus.publish(topic, [OutRecord(key="a", value=b"v")])
        after = time.time_ns() // 1_000_000
        (rec,) = await drain(await case.bus.consumer([topic]), 1)
        assert before <= rec.timestamp_ms <= after


class TestManualConsumer:
    async def test_manual_consumer_is_assigned_every_partition(self, case: BusCase) -> None:
        """Without a group a consumer reads every partition of every topic it names."""
        t1, t2 = await case.topic(3), await case.topic(2)
        consumer = await case.bus.consumer([t1, t2])
        assert consumer.assignment() == {(t1, 0), (t1, 1), (t1, 2), (t2, 0), (t2, 1)}
        assert consumer.group is None

    async def test_not_from_beginning_reads_only_later_records(self, case: BusCase) -> None:
        """A consumer opened with from_beginning=False skips what was there and reads what comes after.

        The earlier records go one per publish: Tansu's "latest" offset is the last batch's base + 1
        (TEST-BROKER.md), exact only when that batch holds a single record.
        """
        topic = await case.topic(2)
        for rec in records(10):
            await case.bus.publish(topic, [rec])
        consumer = await case.bus.consumer([topic], from_beginning=False)
        await case.bus.publish(topic, [OutRecord(key="late", value=b"late")])
        got = await drain(consumer, 1)
        assert [r.value for r in got] == [b"late"]

    async def test_seek_to_beginning_and_to_an_offset_reread(self, case: BusCase) -> None:
        """After reading everything, seek_to_beginning replays all and seek(tp, n) resumes at offset n."""
        topic = await case.topic(1)
        await case.bus.publish(topic, records(10))
        consumer = await case.bus.consumer([topic])
        assert len(await drain(consumer, 10)) == 10
        await consumer.seek_to_beginning()
        assert [r.offset for r in await drain(consumer, 10)] == list(range(10))
        await consumer.seek((topic, 0), 7)
        assert [r.offset for r in await drain(consumer, 3)] == [7, 8, 9]

    async def test_seek_to_timestamp_goes_to_first_record_at_or_after_it(self, case: BusCase) -> None:
        """Per partition, reading resumes at the first record whose timestamp is >= the target.

        On Tansu (no time index) this exercises the bus's scanning fallback.
        """
        topic = await case.topic(3)
        batch = records(30, keys=6)  # timestamps T0, T0+1s, ... in publish order
        await case.bus.publish(topic, batch)
        consumer = await case.bus.consumer([topic])
        await drain(consumer, 30)
        target = T0 + 17_000
        await consumer.seek_to_timestamp(target)
        got = await drain(consumer, 13)
        assert sorted(r.value for r in got) == sorted(
            r.value for r in batch if (r.timestamp_ms or 0) >= target
        )

    async def test_seek_to_a_timestamp_after_every_record_goes_to_the_end(self, case: BusCase) -> None:
        """A target newer than every record leaves nothing to read until something new arrives."""
        topic = await case.topic(2)
        await case.bus.publish(topic, records(6))
        consumer = await case.bus.consumer([topic])
        await consumer.seek_to_timestamp(T0 + 3_600_000)
        assert await consumer.poll(100, timeout_s=0.5) == []
        await case.bus.publish(topic, [OutRecord(key="new", value=b"new", timestamp_ms=T0 + 7_200_000)])
        assert [r.value for r in await drain(consumer, 1)] == [b"new"]

    async def test_consumption_reaches_the_end_offsets_and_lag(self, case: BusCase) -> None:
        """Reading everything reaches the last published offset of each partition; lag falls to zero.

        Exact end offsets and lag are asserted on the embedded bus only: Tansu reports the last
        batch's base offset + 1 as its high watermark (TEST-BROKER.md), so on Kafka the test asserts
        that consumption reaches the last offset publish returned, and that lag covers the assignment.
        """
        topic = await case.topic(3)
        placed = []
        for start in range(0, 90, 30):
            placed += await case.bus.publish(topic, records(30, keys=9, ts0=T0 + start))
        last = {p: max(o for q, o in placed if q == p) for p, _ in placed}
        consumer = await case.bus.consumer([topic])
        ends = await case.bus.end_offsets(topic)
        assert set(ends) == {0, 1, 2}
        if case.kind == "embedded":
            assert ends == {p: last.get(p, -1) + 1 for p in range(3)}
            assert await consumer.lag() == {(topic, p): ends[p] for p in range(3)}
        got = await drain(consumer, 90)
        assert {p: max(r.offset for r in got if r.partition == p) for p in last} == last
        lag = await consumer.lag()
        assert set(lag) == consumer.assignment()
        if case.kind == "embedded":
            assert set(lag.values()) == {0}

    async def test_manual_consumer_cannot_commit(self, case: BusCase) -> None:
        """Committing needs a group: a manual consumer refuses, and has nothing committed."""
        topic = await case.topic(1)
        consumer = await case.bus.consumer([topic])
        with pytest.raises(BusError):
            await consumer.commit()
        assert await consumer.committed((topic, 0)) is None


class TestConsumerGroup:
    async def test_group_resumes_from_its_committed_offset(self, case: BusCase) -> None:
        """A group member that closes and a new member of the group continue after the committed offset."""
        topic, group = await case.topic(1), f"g-{uuid.uuid4().hex[:8]}"
        await case.bus.publish(topic, records(10))
        first = await case.bus.consumer([topic], group=group)
        assert first.group == group
        got = await drain(first, 10)
        assert [r.offset for r in got] == list(range(10))
        await first.commit({(topic, 0): 4})
        assert await first.committed((topic, 0)) == 4
        await first.close()
        second = await case.bus.consumer([topic], group=group)
        resumed = await drain(second, 6)
        assert [r.offset for r in resumed] == [4, 5, 6, 7, 8, 9]
        await second.commit()
        assert await second.committed((topic, 0)) == 10

    async def test_two_members_split_the_partitions(self, case: BusCase) -> None:
        """Two members of one group share the partitions with no partition read by both."""
        topic, group = await case.topic(4), f"g-{uuid.uuid4().hex[:8]}"
        a = await case.bus.consumer([topic], group=group, client_id="member-a")
        b = await case.bus.consumer([topic], group=group, client_id="member-b")
        everything = {(topic, p) for p in range(4)}
        deadline = time.monotonic() + 30
        while not (
            a.assignment()
            and b.assignment()
            and a.assignment() | b.assignment() == everything
            and not a.assignment() & b.assignment()
        ):
            assert time.monotonic() < deadline, "the group never settled on a split"
            await asyncio.gather(a.poll(10, 0.2), b.poll(10, 0.2))
        placed = await case.bus.publish(topic, records(80, keys=20))
        got_a: list[BusRecord] = []
        got_b: list[BusRecord] = []
        deadline = time.monotonic() + 20
        while len(got_a) + len(got_b) < len(placed) and time.monotonic() < deadline:
            batch_a, batch_b = await asyncio.gather(a.poll(500, 0.3), b.poll(500, 0.3))
            got_a += batch_a
            got_b += batch_b
        assert {(r.topic, r.partition) for r in got_a} <= a.assignment()
        assert {(r.topic, r.partition) for r in got_b} <= b.assignment()
        assert not {r.partition for r in got_a} & {r.partition for r in got_b}
        assert sorted((r.partition, r.offset) for r in got_a + got_b) == sorted(placed)
