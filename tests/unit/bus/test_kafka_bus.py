"""Kafka-bus specifics the shared contract cannot state: topic configs, failures, record conversion."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.consumer import fetcher
from aiokafka.structs import ConsumerRecord, TopicPartition
from structlog.testing import capture_logs

from hub.bus import KafkaBus
from hub.bus.kafka_consumer import KafkaConsumer, ReadPositions
from hub.bus.kafka_records import bus_record, unpack_into_bus_records
from hub.errors import BusError, PublishFailed
from hub.ports import BusRecord, OutRecord
from tests.fixtures.kafka import start_broker, stop_broker, unique_topic
from topics.catalogue import TopicSpec

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Sequence


def _record(
    key: bytes | None, value: bytes | None, headers: Sequence[tuple[str, bytes | None]]
) -> ConsumerRecord[bytes, bytes]:
    return ConsumerRecord("t", 1, 7, 1234, 0, key, value, None, 0, 0, headers)


def _convert(rec: ConsumerRecord[bytes, bytes]) -> BusRecord:
    return bus_record(TopicPartition(rec.topic, rec.partition), rec)


class _FakeAiokafka:
    """Hands out prepared `getmany` answers; seeks only count (the broker is not the point here)."""

    def __init__(self, answers: list[dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]]]) -> None:
        self.answers = answers
        self.seeks: list[tuple[TopicPartition, int]] = []

    async def getmany(self, **_: object) -> dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]]:
        return self.answers.pop(0)

    def assignment(self) -> set[TopicPartition]:
        return {TopicPartition("t", 1)}

    def seek(self, tp: TopicPartition, offset: int) -> None:
        self.seeks.append((tp, offset))


def _at(*offsets: int) -> dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]]:
    return {
        TopicPartition("t", 1): [ConsumerRecord("t", 1, o, 0, 0, b"k", b"v", None, 1, 1, ()) for o in offsets]
    }


def _consumer(fake: _FakeAiokafka, positions: ReadPositions | None = None) -> KafkaConsumer:
    return KafkaConsumer(fake, group="g", seeker=None, positions=positions)  # type: ignore[arg-type]


class TestRewoundLog:
    """A partition whose records start below the position the consumer reached: the log was lost.

    Shown with prepared fetch answers: on Apache Kafka a fetch past the end of a partition's log is
    answered "offset out of range" and aiokafka resets the position, but the Tansu test broker
    answers it with nothing (until the log grows that far), so it cannot show the reset.
    """

    async def test_records_starting_below_the_position_are_reported(self) -> None:
        """The broker reset the position to the start of a shorter log: one warning naming both offsets."""
        consumer = _consumer(_FakeAiokafka([_at(0, 1, 2), _at(3), _at(0, 1)]))
        with capture_logs() as logs:
            for _ in range(3):
                await consumer.poll()
        rewound = [e for e in logs if e["event"] == "kafka_log_rewound"]
        assert [(e["topic"], e["partition"], e["expected_offset"], e["first_offset"]) for e in rewound] == [
            ("t", 1, 4, 0)
        ]
        assert rewound[0]["log_level"] == "warning"

    async def test_a_seek_back_or_a_rebalance_is_not_a_rewind(self) -> None:
        """Going back on the hub's own seek, or after the group reassigned partitions, is expected."""
        positions = ReadPositions()
        consumer = _consumer(_FakeAiokafka([_at(5, 6), _at(2, 3), _at(0, 1)]), positions)
        with capture_logs() as logs:
            await consumer.poll()
            await consumer.seek(("t", 1), 2)
            await consumer.poll()
            await positions.on_partitions_revoked(set())
            await positions.on_partitions_assigned(set())
            await consumer.poll()
        assert [e for e in logs if e["event"] == "kafka_log_rewound"] == []


class TestRecordConversion:
    async def test_records_aiokafka_unpacked_itself_are_converted_in_partition_order(self) -> None:
        """Without the fast path (another aiokafka), poll converts ConsumerRecords: same records, same order."""
        fake = _FakeAiokafka(
            [
                {
                    TopicPartition("t", 2): [ConsumerRecord("t", 2, 0, 5, 0, b"b", b"2", None, 1, 1, ())],
                    TopicPartition("t", 1): [
                        ConsumerRecord("t", 1, o, 5, 0, b"a", b"1", None, 1, 1, ()) for o in (3, 4)
                    ],
                }
            ]
        )
        polled = await _consumer(fake).poll()
        assert polled == [
            BusRecord("t", 1, 3, "a", b"1", (), 5),
            BusRecord("t", 1, 4, "a", b"1", (), 5),
            BusRecord("t", 2, 0, "b", b"2", (), 5),
        ]
        assert all(type(r) is BusRecord for r in polled)

    def test_a_consumer_without_the_expected_internals_keeps_aiokafkas_records(self) -> None:
        """The fast path is not forced onto a fetcher it does not fit: it says so and changes nothing."""
        with capture_logs() as logs:
            assert unpack_into_bus_records(_FakeAiokafka([])) is False
        assert [e["event"] for e in logs] == ["kafka_fast_unpack_unavailable"]

    def test_fields_map_onto_bus_records(self) -> None:
        """Topic, partition, offset, UTF-8 key, value, headers and timestamp are carried over."""
        rec = _convert(_record("设备-1".encode(), b"v", [("type", b"asset.registered")]))
        assert (rec.topic, rec.partition, rec.offset, rec.key, rec.value, rec.timestamp_ms) == (
            "t",
            1,
            7,
            "设备-1",
            b"v",
            1234,
        )
        assert rec.headers == (("type", b"asset.registered"),)

    def test_a_foreign_undecodable_key_does_not_block_the_partition(self) -> None:
        """A key that is not UTF-8 (written by another tool) is decoded with replacement, not raised on."""
        assert _convert(_record(b"\xff\xfe", b"v", [])).key == "\ufffd\ufffd"

    def test_a_tombstone_reads_as_an_empty_value(self) -> None:
        """A null value (compaction tombstone) becomes b"" and a missing key stays None."""
        rec = _convert(_record(None, None, []))
        assert (rec.key, rec.value) == (None, b"")

    def test_a_null_header_value_reads_as_empty_bytes(self) -> None:
        """A header written with a null value (possible in Kafka, never by the hub) reads as b""."""
        rec = _convert(_record(b"k", b"v", (("a", b"1"), ("b", None))))
        assert rec.headers == (("a", b"1"), ("b", b""))
        assert (rec.header("a"), rec.header("b"), rec.header("c")) == (b"1", b"", None)

    def test_records_are_immutable_and_compare_by_fields(self) -> None:
        """A converted record equals one built field by field and cannot be changed in place."""
        rec = _convert(_record(b"k", b"v", (("a", b"1"),)))
        assert rec == BusRecord("t", 1, 7, "k", b"v", (("a", b"1"),), 1234)
        assert isinstance(rec, BusRecord)
        with pytest.raises(AttributeError):
            rec.offset = 8  # type: ignore[misc]


@pytest.mark.kafka
class TestKafkaBus:
    @pytest.fixture
    async def bus(self, kafka_bootstrap: str) -> AsyncIterator[KafkaBus]:
        """A started Kafka bus on the session's broker."""
        b = KafkaBus(kafka_bootstrap, client_id="unit")
        await b.start()
        yield b
        await b.close()

    async def test_topics_are_created_with_their_catalogue_configs(self, bus: KafkaBus) -> None:
        """ensure_topics sets retention.ms and cleanup.policy from the TopicSpec on the broker."""
        name = unique_topic("configs")
        await bus.ensure_topics([TopicSpec(name, key="id", partitions=2, compacted=True)])
        assert bus._admin is not None
        (response,) = await bus._admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, name)])
        (resource,) = response.resources
        configs = {entry[0]: entry[1] for entry in resource[4]}
        assert configs["retention.ms"] == "-1"
        assert configs["cleanup.policy"] == "compact"

    async def test_unkeyed_records_are_spread_round_robin(self, bus: KafkaBus) -> None:
        """Records without a key cycle over the partitions, as on the embedded bus."""
        name = unique_topic("roundrobin")
        await bus.ensure_topics([TopicSpec(name, key="id", partitions=3)])
        placed = await bus.publish(name, [OutRecord(key=None, value=b"v")] * 6)
        assert [p for p, _ in placed] == [0, 1, 2, 0, 1, 2]

    async def test_fetched_records_are_unpacked_straight_into_bus_records(
        self, bus: KafkaBus, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """aiokafka's fetcher builds the hub's records itself: no ConsumerRecord is made on the way.

        Fails when an aiokafka upgrade no longer takes the fast path (hub.bus.kafka_records).
        """
        built: list[object] = []

        class CountedRecord(fetcher.ConsumerRecord):  # type: ignore[misc]
            def __init__(self, *args: object) -> None:
                built.append(args)
                super().__init__(*args)

        monkeypatch.setattr(fetcher, "ConsumerRecord", CountedRecord)
        name = unique_topic("unpack")
        await bus.ensure_topics([TopicSpec(name, key="id", partitions=2)])
        sent = [OutRecord(key=f"k{i}", value=b"v%d" % i, headers=(("event_type", b"x"),)) for i in range(40)]
        await bus.publish(name, sent)
        consumer = await bus.consumer([name])
        got: list[BusRecord] = []
        while len(got) < len(sent):
            polled = await consumer.poll(100, timeout_s=5.0)
            assert polled, f"stalled after {len(got)} records"
            got += polled
        assert sorted((r.key, r.value, r.headers) for r in got) == sorted(
            (s.key, s.value, s.headers) for s in sent
        )
        assert all(type(r) is BusRecord for r in got)
        assert built == []

    async def test_foreign_records_with_nulls_read_as_the_port_says(self, bus: KafkaBus) -> None:
        """Another producer's tombstone, null header value and non-UTF-8 key arrive as b"", b"" and U+FFFD."""
        name = unique_topic("foreign")
        await bus.ensure_topics([TopicSpec(name, key="id", partitions=1)])
        producer = AIOKafkaProducer(bootstrap_servers=bus.bootstrap, acks="all", enable_idempotence=False)
        await producer.start()
        try:
            await producer.send_and_wait(
                name, None, key=b"\xff", partition=0, headers=[("a", None), ("b", b"1")]
            )
            await producer.send_and_wait(name, b"v", key=None, partition=0, timestamp_ms=1234)
        finally:
            await producer.stop()
        consumer = await bus.consumer([name])
        got: list[BusRecord] = []
        while len(got) < 2:
            polled = await consumer.poll(10, timeout_s=5.0)
            assert polled, f"stalled after {len(got)} records"
            got += polled
        first, second = got
        assert (first.key, first.value, first.headers, first.header("a")) == (
            "\ufffd",
            b"",
            (("a", b""), ("b", b"1")),
            b"",
        )
        assert (second.topic, second.partition, second.offset, second.key, second.value, second.headers) == (
            name,
            0,
            1,
            None,
            b"v",
            (),
        )
        assert second.timestamp_ms == 1234

    async def test_start_against_no_broker_fails(self) -> None:
        """A bus whose broker does not answer fails to start with BusError, leaving nothing open."""
        proc, bootstrap = start_broker()
        stop_broker(proc)
        with pytest.raises(BusError, match="cannot connect"):
            await KafkaBus(bootstrap).start()

    async def test_publish_fails_when_the_broker_is_gone(self) -> None:
        """Once the broker stops, publish raises PublishFailed rather than answering with offsets."""
        proc, bootstrap = start_broker()
        bus = KafkaBus(bootstrap, request_timeout_ms=2_000)
        try:
            await bus.start()
            name = unique_topic("gone")
            await bus.ensure_topics([TopicSpec(name, key="id", partitions=1)])
            assert await bus.publish(name, [OutRecord(key="a", value=b"v")]) == [(0, 0)]
        finally:
            stop_broker(proc)
        try:
            with pytest.raises(PublishFailed):
                await bus.publish(name, [OutRecord(key="a", value=b"v")])
        finally:
            await bus.close()
