"""An in-memory EventBus / Consumer implementing hub.ports, for projection unit tests only.

It behaves like Kafka where the runner cares: the group's partitions are assigned during the
first `poll()`, and that same poll already returns records from the group's *committed* offset
(or the beginning), before the runner had a chance to seek. Integration tests use the real
buses instead.
"""

from __future__ import annotations

import zlib
from typing import TYPE_CHECKING

from hub.ports import BusRecord, OutRecord, TopicPartition

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from topics.catalogue import TopicSpec


class FakeBus:
    """Topics as lists of records per partition; group commits in a dict."""

    kind = "fake"

    def __init__(self) -> None:
        self.logs: dict[str, list[list[BusRecord]]] = {}
        self.commits: dict[str, dict[TopicPartition, int]] = {}
        self.consumers: list[FakeConsumer] = []

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def ensure_topics(self, specs: Sequence[TopicSpec], prefix: str = "") -> list[str]:
        created = []
        for spec in specs:
            name = spec.full_name(prefix)
            if name not in self.logs:
                self.logs[name] = [[] for _ in range(spec.partitions)]
                created.append(name)
        return created

    async def list_topics(self) -> dict[str, int]:
        return {name: len(parts) for name, parts in self.logs.items()}

    async def publish(self, topic: str, records: Sequence[OutRecord]) -> list[tuple[int, int]]:
        parts = self.logs[topic]
        out = []
        for rec in records:
            p = zlib.crc32((rec.key or "").encode()) % len(parts)
            offset = len(parts[p])
            parts[p].append(
                BusRecord(topic, p, offset, rec.key, rec.value, rec.headers, rec.timestamp_ms or 0)
            )
            out.append((p, offset))
        return out

    def append_raw(self, topic: str, partition: int, value: bytes) -> int:
        """Put bytes on a partition as they are (e.g. a poison record); return the offset."""
        part = self.logs[topic][partition]
        part.append(BusRecord(topic, partition, len(part), None, value, (), 0))
        return len(part) - 1

    async def consumer(
        self,
        topics: Sequence[str],
        *,
        group: str | None = None,
        from_beginning: bool = True,
        client_id: str | None = None,
    ) -> FakeConsumer:
        consumer = FakeConsumer(self, tuple(topics), group)
        self.consumers.append(consumer)
        return consumer

    async def end_offsets(self, topic: str) -> dict[int, int]:
        return {p: len(part) for p, part in enumerate(self.logs[topic])}


class FakeConsumer:
    """One group member owning every partition of its topics once it has polled."""

    def __init__(self, bus: FakeBus, topics: tuple[str, ...], group: str | None) -> None:
        self.bus = bus
        self.topics = topics
        self.group = group
        self.positions: dict[TopicPartition, int] = {}
        self.seeks: list[tuple[TopicPartition, int]] = []
        self.closed = False

    def _committed(self) -> dict[TopicPartition, int]:
        return self.bus.commits.setdefault(self.group or "", {})

    async def poll(self, max_records: int = 500, timeout_s: float = 1.0) -> list[BusRecord]:
        if not self.positions:  # join the group: assignment happens inside poll, as in Kafka
            for topic in self.topics:
                for p in range(len(self.bus.logs[topic])):
                    self.positions[(topic, p)] = self._committed().get((topic, p), 0)
        out: list[BusRecord] = []
        for tp in sorted(self.positions):
            part = self.bus.logs[tp[0]][tp[1]]
            batch = part[self.positions[tp] : self.positions[tp] + max_records - len(out)]
            out.extend(batch)
            self.positions[tp] += len(batch)
        return out

    async def commit(self, offsets: Mapping[TopicPartition, int] | None = None) -> None:
        self._committed().update(offsets if offsets is not None else self.positions)

    async def committed(self, tp: TopicPartition) -> int | None:
        return self._committed().get(tp)

    async def seek(self, tp: TopicPartition, offset: int) -> None:
        self.seeks.append((tp, offset))
        self.positions[tp] = offset

    async def seek_to_beginning(self) -> None:
        for tp in self.positions:
            self.positions[tp] = 0

    async def seek_to_timestamp(self, timestamp_ms: int) -> None:
        raise NotImplementedError("not needed by projection tests")

    def assignment(self) -> frozenset[TopicPartition]:
        return frozenset(self.positions)

    async def lag(self) -> dict[TopicPartition, int]:
        return {tp: len(self.bus.logs[tp[0]][tp[1]]) - pos for tp, pos in self.positions.items()}

    async def close(self) -> None:
        self.closed = True
