"""Key -> partition: Kafka's murmur2 partitioner, and round robin for unkeyed records."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hub.bus.partitioner import Partitioner, partition_for_key

# Signed 32-bit murmur2 values from Apache Kafka's own test (clients UtilsTest.testMurmur2).
JAVA_MURMUR2 = {
    "21": -973932308,
    "foobar": -790332482,
    "a-little-bit-long-string": -985981536,
    "a-little-bit-longer-string": -1486304829,
    "lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8": -58897971,
    "abc": 479470107,
}


class TestPartitionForKey:
    @pytest.mark.parametrize(("key", "java_hash"), sorted(JAVA_MURMUR2.items()))
    @pytest.mark.parametrize("partitions", [1, 3, 6, 7, 12])
    def test_matches_the_java_client(self, key: str, java_hash: int, partitions: int) -> None:
        """The partition equals Java's toPositive(murmur2(key)) % partitions for Kafka's reference keys."""
        assert partition_for_key(key, partitions) == (java_hash & 0x7FFFFFFF) % partitions

    @given(key=st.text(), partitions=st.integers(min_value=1, max_value=1000))
    def test_is_a_stable_partition_in_range(self, key: str, partitions: int) -> None:
        """Any key maps to one partition in [0, partitions), the same on every call."""
        first = partition_for_key(key, partitions)
        assert 0 <= first < partitions
        assert partition_for_key(key, partitions) == first

    def test_hashes_the_utf8_bytes_of_the_key(self) -> None:
        """Non-ASCII keys (Chinese asset ids) hash by their UTF-8 bytes, as Java's StringSerializer sends."""
        from aiokafka.partitioner import murmur2

        key = "设备-0001"
        assert partition_for_key(key, 6) == (murmur2(key.encode("utf-8")) & 0x7FFFFFFF) % 6

    def test_rejects_a_topic_without_partitions(self) -> None:
        """A partition count below one is a programming error."""
        with pytest.raises(ValueError, match="at least one partition"):
            partition_for_key("k", 0)


class TestPartitioner:
    def test_unkeyed_records_go_round_robin_per_topic(self) -> None:
        """Records without a key cycle through the partitions, counted separately for each topic."""
        p = Partitioner()
        assert [p.partition("a", None, 3) for _ in range(7)] == [0, 1, 2, 0, 1, 2, 0]
        assert [p.partition("b", None, 2) for _ in range(3)] == [0, 1, 0]

    def test_keyed_records_use_murmur2(self) -> None:
        """A keyed record goes where partition_for_key says, whatever came before it."""
        p = Partitioner()
        p.partition("a", None, 6)
        assert p.partition("a", "foobar", 6) == partition_for_key("foobar", 6)
