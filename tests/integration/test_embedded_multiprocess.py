"""Several OS processes on one embedded-bus file: concurrent appends and one shared consumer group.

Two processes publish while two other processes consume in one group and commit after every
poll. Every offset must be handed out exactly once, and every record read exactly once: members
commit before their next poll, and a partition changes hands only at a member's poll, after that
commit, so this flow has no at-least-once overlap to excuse.
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import time
from collections import Counter
from pathlib import Path

from hub.bus import EmbeddedBus
from hub.ports import OutRecord
from topics.catalogue import TopicSpec

TOPIC = "mp"
PARTITIONS = 4
BATCHES = 20
BATCH_SIZE = 50
PRODUCERS = 2
TOTAL = PRODUCERS * BATCHES * BATCH_SIZE


async def _produce(path: Path, name: str, out: Path) -> None:
    bus = EmbeddedBus(path)
    await bus.start()
    placed: list[tuple[int, int, str]] = []
    for b in range(BATCHES):
        batch = [
            OutRecord(key=f"{name}-{i % 13}", value=f"{name}:{b}:{i}".encode()) for i in range(BATCH_SIZE)
        ]
        for (partition, offset), rec in zip(await bus.publish(TOPIC, batch), batch, strict=True):
            placed.append((partition, offset, rec.value.decode()))
        await asyncio.sleep(
            0.03
        )  # interleave with the other producer; run long enough for both members to join
    await bus.close()
    out.write_text(json.dumps(placed))


async def _consume(path: Path, name: str, out: Path) -> None:
    bus = EmbeddedBus(path, session_timeout_s=5.0, heartbeat_interval_s=0.1)
    await bus.start()
    consumer = await bus.consumer([TOPIC], group="mp-group", client_id=name)
    seen: list[tuple[int, int, str]] = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        records = await consumer.poll(200, timeout_s=0.2)
        if records:
            seen += [(r.partition, r.offset, r.value.decode()) for r in records]
            await consumer.commit()
        committed = [await consumer.committed((TOPIC, p)) for p in range(PARTITIONS)]
        if sum(c or 0 for c in committed) == TOTAL:
            break
    await bus.close()
    out.write_text(json.dumps(seen))


def _run(role: str, path: str, name: str, out: str) -> None:
    worker = _produce if role == "produce" else _consume
    asyncio.run(worker(Path(path), name, Path(out)))


class TestManyProcessesOneFile:
    async def test_no_offset_lost_or_duplicated_and_each_record_read_once(self, tmp_path: Path) -> None:
        """Two appending and two consuming processes: offsets are gap-free and unique, reads exactly once."""
        path = tmp_path / "bus.sqlite3"
        bus = EmbeddedBus(path)
        await bus.start()
        await bus.ensure_topics([TopicSpec(TOPIC, key="id", partitions=PARTITIONS)])
        await bus.close()

        ctx = multiprocessing.get_context("spawn")
        roles = [("consume", f"c{i}") for i in range(2)] + [("produce", f"p{i}") for i in range(PRODUCERS)]
        outs = {name: tmp_path / f"{name}.json" for _, name in roles}
        procs = [
            ctx.Process(target=_run, args=(role, str(path), name, str(outs[name]))) for role, name in roles
        ]
        for p in procs:
            p.start()
        for p in procs:
            await asyncio.to_thread(p.join, 90)
        assert [p.exitcode for p in procs] == [0] * len(procs)

        placed = [tuple(x) for name in ("p0", "p1") for x in json.loads(outs[name].read_text())]
        assert len(placed) == TOTAL
        by_partition = Counter(p for p, _, _ in placed)
        for partition, count in by_partition.items():
            assert sorted(o for p, o, _ in placed if p == partition) == list(range(count))

        read = [tuple(x) for name in ("c0", "c1") for x in json.loads(outs[name].read_text())]
        assert sorted(read) == sorted(placed)
