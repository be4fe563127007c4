"""Which member of a consumer group reads which partition: Kafka's round-robin assignor.

Pure and deterministic: every member of an embedded group computes the same answer from the same
membership, so no coordinator is needed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from hub.ports import TopicPartition


def round_robin(
    members: Mapping[str, frozenset[str]], partitions: Sequence[TopicPartition]
) -> dict[str, list[TopicPartition]]:
    """Deal the sorted partitions over the sorted members, skipping members not subscribed to a topic.

    Same rule as Kafka's RoundRobinAssignor: walk the topic-partitions in (topic, partition) order
    and give each to the next member, in member-id order, whose subscription holds its topic.
    """
    ordered = sorted(members)
    result: dict[str, list[TopicPartition]] = {m: [] for m in ordered}
    if not ordered:
        return result
    cursor = 0
    for tp in sorted(partitions):
        for step in range(len(ordered)):
            member = ordered[(cursor + step) % len(ordered)]
            if tp[0] in members[member]:
                result[member].append(tp)
                cursor = (cursor + step + 1) % len(ordered)
                break
    return result
