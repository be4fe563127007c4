"""Key -> partition, the same way on both buses.

Keyed records use Kafka's default partitioner: ``toPositive(murmur2(key_bytes)) % partitions``
(org.apache.kafka.clients.producer.internals.DefaultPartitioner / BuiltInPartitioner), with the
key encoded as UTF-8. Both the embedded bus and the Kafka bus compute the partition here and the
Kafka bus passes it explicitly to the producer, so one key lands on the same partition *number*
on either bus and on any other Kafka client that hashes the same key bytes.

Records without a key are spread round robin, per bus instance and topic (`RoundRobin`).
Kafka's Java client uses a "sticky" partition for null keys instead; no caller may rely on where
an unkeyed record lands, only on keyed ordering.
"""

from __future__ import annotations

import itertools
from typing import TYPE_CHECKING

from aiokafka.partitioner import murmur2  # the Java client's murmur2, ported by aiokafka

if TYPE_CHECKING:
    from collections.abc import Iterator

POSITIVE_MASK = 0x7FFFFFFF  # Java's Utils.toPositive


def partition_for_key(key: str, partitions: int) -> int:
    """The partition a keyed record goes to on a topic with `partitions` partitions."""
    if partitions < 1:
        raise ValueError(f"a topic has at least one partition, got {partitions}")
    return (int(murmur2(key.encode("utf-8"))) & POSITIVE_MASK) % partitions


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
