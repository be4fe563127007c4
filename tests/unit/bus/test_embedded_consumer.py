"""Embedded consumers: polling, fairness, and consumer groups coordinated through the log file."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import time
from typing import TYPE_CHECKING, Any

import pytest

from hub.bus import EmbeddedBus, embedded_consumer, sqlite_groups, sqlite_log, sqlite_watch
from hub.errors import BusError
from hub.ports import OutRecord
from topics.catalogue import TopicSpec

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from pathlib import Path

    from hub.bus.embedded_consumer import EmbeddedConsumer

SESSION_S = 1.0
HEARTBEAT_S = 0.1


@pytest.fixture
async def bus(tmp_path: Path) -> AsyncIterator[EmbeddedBus]:
    """A started embedded bus with short group timings and a 2-partition topic `t`."""
    b = EmbeddedBus(tmp_path / "bus.sqlite3", session_timeout_s=SESSION_S, heartbeat_interval_s=HEARTBEAT_S)
    await b.start()
    await b.ensure_topics([TopicSpec("t", key="id", partitions=2)])
    yield b
    await b.close()


async def settle(*consumers: EmbeddedConsumer, until: float = 5.0) -> None:
    """Poll (reading nothing) until the members hold disjoint assignments covering `t`."""
    deadline = time.monotonic() + until
    while True:
        sets = [c.assignment() for c in consumers]
        union = frozenset().union(*sets)
        if all(sets) and union == {("t", 0), ("t", 1)} and sum(map(len, sets)) == len(union):
            return
        assert time.monotonic() < deadline, f"group did not settle: {sets}"
        await asyncio.gather(*(c.poll(1, 0.05) for c in consumers))


class TestPolling:
    async def test_poll_waits_for_records_published_meanwhile(self, bus: EmbeddedBus) -> None:
        """A poll with a timeout returns as soon as a record arrives during the wait."""
        consumer = await bus.consumer(["t"])

        async def publish_later() -> None:
            await asyncio.sleep(0.2)
            await bus.publish("t", [OutRecord(key="a", value=b"late")])

        started = time.monotonic()
        task = asyncio.create_task(publish_later())
        got = await consumer.poll(10, timeout_s=5.0)
        await task
        assert [r.value for r in got] == [b"late"]
        assert time.monotonic() - started < 2.0

    async def test_poll_returns_empty_after_the_timeout(self, bus: EmbeddedBus) -> None:
        """With nothing to read, poll gives up after its timeout and returns no records."""
        consumer = await bus.consumer(["t"])
        started = time.monotonic()
        assert await consumer.poll(10, timeout_s=0.3) == []
        assert 0.25 <= time.monotonic() - started < 2.0

    async def test_a_busy_partition_does_not_starve_the_other(self, bus: EmbeddedBus) -> None:
        """Successive small polls serve both partitions even when each holds more than one poll's worth."""
        keys = {p: next(f"k{i}" for i in range(100) if _partition(f"k{i}") == p) for p in (0, 1)}
        await bus.publish("t", [OutRecord(key=keys[p], value=b"v") for p in (0, 1) for _ in range(50)])
        consumer = await bus.consumer(["t"])
        first, second = await consumer.poll(10, 0.5), await consumer.poll(10, 0.5)
        assert len(first) == len(second) == 10
        assert {r.partition for r in first + second} == {0, 1}

    async def test_closed_consumer_refuses_to_poll(self, bus: EmbeddedBus) -> None:
        """Polling a closed consumer is an error."""
        consumer = await bus.consumer(["t"])
        await consumer.close()
        with pytest.raises(BusError, match="closed"):
            await consumer.poll(1, 0)

    async def test_manual_consumer_of_an_unknown_topic_fails(self, bus: EmbeddedBus) -> None:
        """A manually assigned consumer needs its topics to exist."""
        with pytest.raises(BusError, match="unknown topic"):
            await bus.consumer(["nope"])

    async def test_seeking_a_partition_not_assigned_fails(self, bus: EmbeddedBus) -> None:
        """seek names an assigned partition and a non-negative offset."""
        consumer = await bus.consumer(["t"])
        with pytest.raises(BusError, match="not assigned"):
            await consumer.seek(("t", 9), 0)
        with pytest.raises(ValueError, match=">= 0"):
            await consumer.seek(("t", 0), -1)

    async def test_bus_close_closes_its_consumers(self, bus: EmbeddedBus) -> None:
        """Closing the bus closes the consumers it made."""
        consumer = await bus.consumer(["t"])
        await bus.close()
        assert consumer.closed


class TestGroups:
    async def test_new_group_without_commits_can_start_at_the_end(self, bus: EmbeddedBus) -> None:
        """A group member with from_beginning=False and nothing committed starts after existing records."""
        await bus.publish("t", [OutRecord(key="a", value=b"old")])
        consumer = await bus.consumer(["t"], group="g", from_beginning=False)
        await bus.publish("t", [OutRecord(key="a", value=b"new")])
        assert [r.value for r in await consumer.poll(10, 2.0)] == [b"new"]

    async def test_a_closed_member_hands_its_partitions_over_at_once(self, bus: EmbeddedBus) -> None:
        """When one of two members closes, the other owns every partition well within a session timeout."""
        a = await bus.consumer(["t"], group="g")
        b = await bus.consumer(["t"], group="g")
        await settle(a, b)
        await a.close()
        started = time.monotonic()
        while b.assignment() != {("t", 0), ("t", 1)}:
            await b.poll(1, 0.05)
        assert time.monotonic() - started < SESSION_S

    async def test_a_silent_member_loses_its_partitions_after_the_session_timeout(
        self, bus: EmbeddedBus
    ) -> None:
        """Partitions held by a member that stopped heartbeating move to a live member after the timeout."""
        conn = sqlite_log.open_log(bus.path)
        try:  # a member in another process that claims everything, then dies without leaving
            sqlite_groups.heartbeat(conn, "g", "ghost", ["t"], int(SESSION_S * 1000))
        finally:
            conn.close()
        live = await bus.consumer(["t"], group="g")
        assert live.assignment() == frozenset()
        started = time.monotonic()
        while live.assignment() != {("t", 0), ("t", 1)}:
            assert time.monotonic() - started < 5 * SESSION_S
            await live.poll(1, 0.05)
        assert time.monotonic() - started >= SESSION_S * 0.5

    async def test_commit_for_a_partition_taken_by_another_member_is_rejected(self, bus: EmbeddedBus) -> None:
        """A member whose partitions were given to someone else cannot commit them, and stores nothing."""
        a = await bus.consumer(["t"], group="g")
        assert a.assignment() == {("t", 0), ("t", 1)}
        conn = sqlite_log.open_log(bus.path)
        try:  # a member with a zero session timeout expires `a` and takes its partitions
            sqlite_groups.heartbeat(conn, "g", "usurper", ["t"], 0)
        finally:
            conn.close()
        with pytest.raises(BusError, match="reassigned"):
            await a.commit({("t", 0): 1})
        assert await a.committed(("t", 0)) is None

    async def test_a_member_that_was_expired_resumes_from_the_committed_offset(
        self, bus: EmbeddedBus
    ) -> None:
        """A member that lost its partitions restarts them at the group's committed offset."""
        await bus.publish("t", [OutRecord(key="k", value=str(i).encode()) for i in range(10)])
        a = await bus.consumer(["t"], group="g")
        got = await a.poll(100, 1.0)
        assert len(got) == 10
        partition = got[0].partition
        with contextlib.closing(sqlite3.connect(bus.path, isolation_level=None)) as raw:
            # another member committed offset 3 while `a` was away
            (pid,) = raw.execute(
                "SELECT pid FROM bus_partitions WHERE topic='t' AND partition=?", (partition,)
            ).fetchone()
            raw.execute("INSERT INTO bus_group_offsets VALUES ('g', ?, 3, 0)", (pid,))
        conn = sqlite_log.open_log(bus.path)
        try:
            sqlite_groups.heartbeat(conn, "g", "usurper", ["t"], 0)  # expires `a`
            sqlite_groups.leave(conn, "g", "usurper")
        finally:
            conn.close()
        again = await a.poll(100, 2.0)
        assert [int(r.value) for r in again] == list(range(3, 10))

    async def test_a_group_picks_up_a_topic_created_after_it_joined(self, bus: EmbeddedBus) -> None:
        """A group may subscribe to a topic that does not exist yet and reads it once it is created."""
        consumer = await bus.consumer(["later"], group="g")
        assert consumer.assignment() == frozenset()
        await bus.ensure_topics([TopicSpec("later", key="id", partitions=1)])
        await bus.publish("later", [OutRecord(key="a", value=b"v")])
        got = []
        deadline = time.monotonic() + 5
        while not got and time.monotonic() < deadline:
            got = await consumer.poll(10, 0.2)
        assert [r.value for r in got] == [b"v"]


def _partition(key: str) -> int:
    from hub.bus.partitioner import partition_for_key

    return partition_for_key(key, 2)


class _FakeClock:
    """Stands in for the consumer module's `time`: monotonic time moves only when told to (or slept)."""

    def __init__(self) -> None:
        self.now = 1_000.0

    def monotonic(self) -> float:
        return self.now


class _Sleeper:
    """Stands in for the consumer module's `asyncio`: records each pause and advances the fake clock."""

    def __init__(self, clock: _FakeClock) -> None:
        self.clock = clock
        self.pauses: list[float] = []

    def __getattr__(self, name: str) -> object:
        return getattr(asyncio, name)

    async def sleep(self, delay: float) -> None:
        self.pauses.append(delay)
        self.clock.now += delay
        await asyncio.sleep(0)


class TestIdleCost:
    """What an idle consumer costs the log: few fetches, and no group read on every one."""

    @pytest.fixture
    def clock(self, monkeypatch: pytest.MonkeyPatch) -> _FakeClock:
        fake = _FakeClock()
        monkeypatch.setattr(embedded_consumer, "time", fake)
        return fake

    @pytest.fixture
    def fetches(self, monkeypatch: pytest.MonkeyPatch) -> list[str | None]:
        """The group each fetch checked the generation of (None: the cached one was fresh enough)."""
        seen: list[str | None] = []
        real = embedded_consumer._poll_once

        def counted(conn: sqlite3.Connection, group: str | None, *args: Any) -> Any:
            seen.append(group)
            return real(conn, group, *args)

        monkeypatch.setattr(embedded_consumer, "_poll_once", counted)
        return seen

    async def test_an_idle_poll_backs_off_between_fetches(
        self, bus: EmbeddedBus, clock: _FakeClock, fetches: list[str | None], monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Without the bus's watcher (a consumer made on its own), empty fetches are spaced 20, 40,
        80 ms, then every 100 ms until the timeout: 8 in half a second."""
        sleeper = _Sleeper(clock)
        monkeypatch.setattr(embedded_consumer, "asyncio", sleeper)
        consumer = await bus.consumer(["t"])
        consumer._watch = None
        assert await consumer.poll(10, timeout_s=0.5) == []
        assert sleeper.pauses == pytest.approx([0.02, 0.04, 0.08, 0.1, 0.1, 0.1, 0.06])
        assert len(fetches) == len(sleeper.pauses) + 1

    async def test_idle_consumers_of_a_bus_wait_on_one_reader(
        self, tmp_path: Path, fetches: list[str | None], monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Idle consumers fetch once each and then wait on the bus's watcher, which reads the ends of
        all their partitions in one query; a record published through the bus, or by another
        process (another bus on the file), wakes the one that reads it."""
        reads: list[list[int]] = []
        real_read = sqlite_watch._read

        def counted(conn: sqlite3.Connection, pids: list[int], groups: list[str]) -> Any:
            reads.append(pids)
            return real_read(conn, pids, groups)

        monkeypatch.setattr(sqlite_watch, "_read", counted)
        bus = EmbeddedBus(tmp_path / "bus.sqlite3")
        other = EmbeddedBus(tmp_path / "bus.sqlite3")
        await bus.start()
        await other.start()
        try:
            await bus.ensure_topics(
                [TopicSpec("a", key="id", partitions=1), TopicSpec("b", key="id", partitions=1)]
            )
            a, b = await bus.consumer(["a"]), await bus.consumer(["b"])
            assert await asyncio.gather(a.poll(10, timeout_s=0.3), b.poll(10, timeout_s=0.3)) == [[], []]
            assert len(fetches) == 2  # one each, at the start; then the watcher read for both
            assert 2 in [len(pids) for pids in reads]  # both consumers' partitions in one read

            async def later(on: EmbeddedBus, topic: str) -> None:
                await asyncio.sleep(0.05)
                await on.publish(topic, [OutRecord(key="k", value=topic.encode())])

            for on, topic, consumer in ((bus, "a", a), (other, "b", b)):
                got, _ = await asyncio.gather(consumer.poll(10, timeout_s=30), later(on, topic))
                assert [r.value for r in got] == [topic.encode()]
        finally:
            await other.close()
            await bus.close()

    async def test_the_group_generation_is_read_at_most_once_per_check_interval(
        self, tmp_path: Path, clock: _FakeClock, fetches: list[str | None]
    ) -> None:
        """Polls within GENERATION_CHECK_S use the cached generation; the first one after it reads it
        and takes part in the rebalance another member's join started (heartbeats are far apart here,
        so only the generation check can notice it)."""
        bus = EmbeddedBus(tmp_path / "bus.sqlite3", session_timeout_s=60.0, heartbeat_interval_s=20.0)
        await bus.start()
        try:
            await bus.ensure_topics([TopicSpec("t", key="id", partitions=2)])
            await bus.publish("t", [OutRecord(key=f"k{i}", value=b"v") for i in range(20)])
            a = await bus.consumer(["t"], group="g")
            for _ in range(5):
                assert await a.poll(1, timeout_s=0) != []
            await bus.consumer(["t"], group="g")  # joining bumps the generation
            assert await a.poll(1, timeout_s=0) != []
            assert fetches == [None] * 6
            assert len(a.assignment()) == 2  # not noticed yet: the cached generation was fresh enough
            clock.now += embedded_consumer.GENERATION_CHECK_S
            await a.poll(1, timeout_s=0)
            assert fetches[6:] == ["g"] + [None] * (len(fetches) - 7)
            assert len(a.assignment()) == 1
        finally:
            await bus.close()
