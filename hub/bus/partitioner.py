"""Key -> partition, the same way on both buses.

Keyed records follow the one partition rule, topics.partitioning (Kafka's default partitioner:
``toPositive(murmur2(key_bytes)) % partitions``). Both the embedded bus and the Kafka bus compute
the partition here and the Kafka bus passes it explicitly to the producer, so one key lands on
the same partition *number* on either bus and on any other Kafka client that hashes the same
key bytes.

Records without a key are spread round robin, per bus instance and topic (`RoundRobin`).
Kafka's Java client uses a "sticky" partition for null keys instead; no caller may rely on where
an unkeyed record lands, only on keyed ordering.
"""

from __future__ import annotations

import itertools
from typing import TYPE_CHECKING

from topics.partitioning import partition_for_key

if TYPE_CHECKING:
    from collections.abc import Iterator

__all__ = ["Partitioner", "RoundRobin", "partition_for_key"]  # partition_for_key: kept for callers


class RoundRobin:
    """Partition chooser for unkeyed records: 0, 1, 2, ... per topic, wrapping around."""

    def __init__(self) -> None:
        self._counters: dict[str, Iterator[int]] = {}

    def next(self, topic: str, partitions: int) -> int:
        counter = self._counters.setdefault(topic, itertools.count())
        return next(counter) % partitions


class Partitioner:
    """Chooses the partition of each record: murmur2 of the key, round robin when there is none."""

    def __init__(self) -> None:
        self._round_robin = RoundRobin()

    def partition(self, topic: str, key: str | None, partitions: int) -> int:
        if key is None:
            return self._round_robin.next(topic, partitions)
        return partition_for_key(key, partitions)
