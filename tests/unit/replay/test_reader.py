"""LogReader: exact and to-the-end reads, parked partitions, and a log whose head is gone."""

from __future__ import annotations

import sqlite3
from datetime import timedelta

import pytest

from hub.bus.embedded import EmbeddedBus
from replay.errors import LogIncomplete
from replay.reader import LogReader
from tests.unit.projections.factories import registered
from tests.unit.replay.streams import ASSET_TOPIC, T0, publish

TP0 = (ASSET_TOPIC, 0)


async def fill(bus: EmbeddedBus, n: int = 60) -> None:
    await publish(bus, [registered(f"r{i}", f"A{i}", at=T0 + timedelta(minutes=i)) for i in range(n)])


async def read_all(reader: LogReader, until: dict, **kwargs: object) -> list:  # type: ignore[type-arg]
    out = []
    async for batch in reader.read(until, **kwargs):  # type: ignore[arg-type]
        out += batch
    return out


class TestRead:
    async def test_exact_reads_stop_at_until_and_skip_other_partitions(self, bus: EmbeddedBus) -> None:
        """Only the partitions asked for, from their start through `until`, nothing past it."""
        await fill(bus)
        async with LogReader(bus, [ASSET_TOPIC], batch_size=7) as reader:
            records = await read_all(reader, {TP0: 3}, start={TP0: 1})
        assert [(r.partition, r.offset) for r in records] == [(0, 1), (0, 2), (0, 3)]

    async def test_settle_reads_on_to_the_real_end(self, bus: EmbeddedBus) -> None:
        """With settle, `until` is a minimum: every record of the asked partitions is read."""
        await fill(bus)
        ends = await bus.end_offsets(ASSET_TOPIC)
        async with LogReader(bus, [ASSET_TOPIC]) as reader:
            records = await read_all(reader, dict.fromkeys(reader.partitions(), 0), settle=True)
        assert len(records) == sum(ends.values())
        for partition in ends:
            offsets = [r.offset for r in records if r.partition == partition]
            assert offsets == list(range(ends[partition]))

    async def test_last_offsets_are_end_offsets_minus_one(self, bus: EmbeddedBus) -> None:
        """last_offsets names the last record of every partition (-1 when empty)."""
        await fill(bus, 5)
        ends = await bus.end_offsets(ASSET_TOPIC)
        async with LogReader(bus, [ASSET_TOPIC]) as reader:
            assert await reader.last_offsets() == {(ASSET_TOPIC, p): e - 1 for p, e in ends.items()}

    async def test_a_log_without_its_head_is_refused(self, bus: EmbeddedBus) -> None:
        """Records deleted from the start of a partition (retention not forever): LogIncomplete, not a silent replay."""
        await fill(bus)
        conn = sqlite3.connect(bus.path)
        pid = conn.execute(
            "SELECT pid FROM bus_partitions WHERE topic = ? AND partition = 0", (ASSET_TOPIC,)
        ).fetchone()[0]
        conn.execute("DELETE FROM bus_records WHERE pos >= ? AND pos < ?", (pid << 40, (pid << 40) + 2))
        conn.commit()
        conn.close()
        async with LogReader(bus, [ASSET_TOPIC]) as reader:
            with pytest.raises(LogIncomplete, match="starts at offset 2"):
                await read_all(reader, await reader.last_offsets())

    async def test_offsets_beyond_the_end_are_refused_after_the_stall_timeout(self, bus: EmbeddedBus) -> None:
        """Asking for records the log never had fails with the partitions still owed."""
        await fill(bus, 3)
        async with LogReader(bus, [ASSET_TOPIC], stall_timeout_s=0.3) as reader:
            with pytest.raises(LogIncomplete, match="ends before"):
                await read_all(reader, {TP0: 500})

    async def test_read_from_time_skips_older_records(self, bus: EmbeddedBus) -> None:
        """Seeking by record time (recorded_at) yields the records recorded at or after it, in every partition."""
        await fill(bus, 30)
        cut = T0 + timedelta(minutes=20, seconds=5)  # records carry recorded_at = occurred + 5 min
        async with LogReader(bus, [ASSET_TOPIC]) as reader:
            records = [r async for batch in reader.read_from_time(int(cut.timestamp() * 1000)) for r in batch]
        assert sorted(r.key for r in records) == sorted(f"A{i}" for i in range(16, 30))
