"""The one partition rule: which partition a keyed record lands on, on either bus.

Kafka's default partitioner: ``toPositive(murmur2(key_bytes)) % partitions``
(org.apache.kafka.clients.producer.internals.BuiltInPartitioner), with the key encoded as UTF-8.
The embedded bus and the Kafka bus both place records with it (hub.bus.partitioner), and readers
that go straight to one key's partition (replay history and as-of, the audit ledger) find it
here, so one key has one partition *number* on either bus and for any Kafka client hashing the
same bytes. Pure Python on purpose: the rule must not pull the Kafka client out of hub.bus.
"""

from __future__ import annotations

_SEED = 0x9747B28C
_M = 0x5BD1E995  # the mixing constant and shift of MurmurHash2, as in Kafka's Utils.murmur2
_R = 24
_U32 = 0xFFFFFFFF
_POSITIVE_MASK = 0x7FFFFFFF  # Java's Utils.toPositive


def murmur2(data: bytes) -> int:
    """MurmurHash2 of `data` as Kafka's Java client computes it, as an unsigned 32-bit int."""
    length = len(data)
    h = (_SEED ^ length) & _U32
    whole = length - length % 4
    for i in range(0, whole, 4):
        k = int.from_bytes(data[i : i + 4], "little")
        k = (k * _M) & _U32
        k ^= k >> _R
        k = (k * _M) & _U32
        h = ((h * _M) & _U32) ^ k
    tail = length % 4
    if tail >= 3:
        h ^= data[whole + 2] << 16
    if tail >= 2:
        h ^= data[whole + 1] << 8
    if tail >= 1:
        h ^= data[whole]
        h = (h * _M) & _U32
    h ^= h >> 13
    h = (h * _M) & _U32
    h ^= h >> 15
    return h


def partition_for_key(key: str, partitions: int) -> int:
    """The partition a record keyed `key` goes to on a topic with `partitions` partitions."""
    if partitions < 1:
        raise ValueError(f"a topic has at least one partition, got {partitions}")
    return (murmur2(key.encode("utf-8")) & _POSITIVE_MASK) % partitions
