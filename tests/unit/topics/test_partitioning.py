"""The one partition rule (topics.partitioning) against Kafka's own murmur2 and its placement."""

from __future__ import annotations

from aiokafka.partitioner import murmur2 as kafka_murmur2
from hypothesis import given
from hypothesis import strategies as st

from tests.unit.bus.test_partitioner import JAVA_MURMUR2  # Kafka's own reference values
from topics.partitioning import murmur2, partition_for_key


def test_murmur2_equals_the_java_clients_reference_values() -> None:
    """Each reference key hashes to Java's value (read as unsigned 32 bits)."""
    assert {k: murmur2(k.encode()) for k in JAVA_MURMUR2} == {
        k: v & 0xFFFFFFFF for k, v in JAVA_MURMUR2.items()
    }


@given(data=st.binary(max_size=64))
def test_murmur2_equals_the_kafka_clients_for_any_bytes(data: bytes) -> None:
    """The pure rule and the Kafka client's murmur2 agree on every input, so both buses place alike."""
    assert murmur2(data) == kafka_murmur2(data)


@given(key=st.text(max_size=40), partitions=st.integers(min_value=1, max_value=64))
def test_partition_is_kafkas_default_partitioners(key: str, partitions: int) -> None:
    """partition = toPositive(murmur2(utf-8 key)) % partitions, as Kafka's producer computes it."""
    expected = (kafka_murmur2(key.encode("utf-8")) & 0x7FFFFFFF) % partitions
    assert partition_for_key(key, partitions) == expected
