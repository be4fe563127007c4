"""The embedded bus's storage: file layout, durability settings, header encoding, failures."""

from __future__ import annotations

import asyncio
import sqlite3
from typing import TYPE_CHECKING

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hub.bus import EmbeddedBus, sqlite_log
from hub.errors import BusError, PublishFailed
from hub.ports import OutRecord
from topics.catalogue import TopicSpec

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from pathlib import Path


@pytest.fixture
async def bus(tmp_path: Path) -> AsyncIterator[EmbeddedBus]:
    """A started embedded bus on a fresh file, with a 2-partition topic `t`."""
    b = EmbeddedBus(tmp_path / "bus.sqlite3")
    await b.start()
    await b.ensure_topics([TopicSpec("t", key="id", partitions=2)])
    yield b
    await b.close()


class TestHeaders:
    @given(st.lists(st.tuples(st.text(), st.binary())))
    def test_encoding_round_trips(self, headers: list[tuple[str, bytes]]) -> None:
        """Any header list (unicode names, arbitrary bytes, repeats, order) decodes to itself."""
        encoded = sqlite_log.encode_headers(tuple(headers))
        assert sqlite_log.decode_headers(encoded) == tuple(headers)

    def test_no_headers_store_nothing(self) -> None:
        """An empty header list is stored as NULL, not as an empty blob."""
        assert sqlite_log.encode_headers(()) is None


class TestFile:
    async def test_a_directory_holds_bus_sqlite3(self, tmp_path: Path) -> None:
        """Given a directory, the bus keeps its log in <dir>/bus.sqlite3."""
        b = EmbeddedBus(tmp_path)
        await b.start()
        await b.close()
        assert b.path == tmp_path / "bus.sqlite3"
        assert b.path.exists()

    async def test_a_path_without_suffix_is_a_data_directory(self, tmp_path: Path) -> None:
        """A data dir that does not exist yet is created and holds bus.sqlite3; it is not used as the file."""
        b = EmbeddedBus(tmp_path / "hub-data")
        await b.start()
        await b.close()
        assert b.path == tmp_path / "hub-data" / "bus.sqlite3"
        assert b.path.is_file()

    async def test_the_log_is_in_wal_mode(self, bus: EmbeddedBus) -> None:
        """The file is in WAL mode, so readers never block the appender."""
        with sqlite3.connect(bus.path) as conn:
            assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"

    async def test_a_newer_schema_is_refused(self, tmp_path: Path) -> None:
        """A file written by a future schema version is not opened (and not modified)."""
        path = tmp_path / "bus.sqlite3"
        with sqlite3.connect(path) as conn:
            conn.execute("PRAGMA user_version=99")
        b = EmbeddedBus(path)
        with pytest.raises(BusError, match="schema version 99"):
            await b.start()
        await b.close()

    async def test_session_timeout_must_exceed_two_heartbeats(self, tmp_path: Path) -> None:
        """Settings where a live member could be expired between its own heartbeats are rejected."""
        with pytest.raises(ValueError, match="session_timeout_s"):
            EmbeddedBus(tmp_path, session_timeout_s=1.0, heartbeat_interval_s=0.5)


class TestPublishFailures:
    async def test_unknown_topic_is_refused(self, bus: EmbeddedBus) -> None:
        """The embedded bus never creates a topic implicitly: publishing to an unknown one fails."""
        with pytest.raises(PublishFailed, match="unknown topic"):
            await bus.publish("nope", [OutRecord(key="a", value=b"v")])

    async def test_locked_store_fails_the_publish_and_stores_nothing(
        self, bus: EmbeddedBus, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
    ) -> None:
        """When the writer lock cannot be had in time the publish raises PublishFailed; nothing is stored."""
        monkeypatch.setattr(sqlite_log, "BUSY_TIMEOUT_S", 0.2)
        impatient = EmbeddedBus(bus.path)
        await impatient.start()
        blocker = sqlite3.connect(bus.path, isolation_level=None)
        blocker.execute("BEGIN IMMEDIATE")
        try:
            with pytest.raises(PublishFailed, match="not stored"):
                await impatient.publish("t", [OutRecord(key="a", value=b"v")])
        finally:
            blocker.execute("ROLLBACK")
            blocker.close()
        assert await impatient.end_offsets("t") == {0: 0, 1: 0}
        assert await impatient.publish("t", [OutRecord(key="a", value=b"v")]) != []
        await impatient.close()

    async def test_empty_publish_returns_nothing(self, bus: EmbeddedBus) -> None:
        """Publishing no records is a no-op answered with an empty list."""
        assert await bus.publish("t", []) == []

    async def test_topic_without_partitions_is_refused(self, bus: EmbeddedBus) -> None:
        """ensure_topics rejects a spec with zero partitions."""
        with pytest.raises(BusError, match="at least one partition"):
            await bus.ensure_topics([TopicSpec("zero", key="id", partitions=0)])

    async def test_end_offsets_of_an_unknown_topic_fail(self, bus: EmbeddedBus) -> None:
        """Asking for the end of a topic that does not exist is an error, not an empty answer."""
        with pytest.raises(BusError, match="unknown topic"):
            await bus.end_offsets("nope")

    async def test_calls_before_start_fail(self, tmp_path: Path) -> None:
        """A bus that was not started says so instead of failing obscurely."""
        with pytest.raises(BusError, match="not open"):
            await EmbeddedBus(tmp_path).list_topics()


class TestConcurrentAppends:
    async def test_two_bus_instances_never_reuse_an_offset(self, bus: EmbeddedBus) -> None:
        """Two instances appending to one file at once get disjoint, gap-free offsets."""
        other = EmbeddedBus(bus.path)
        await other.start()
        batch = [OutRecord(key="same", value=b"v")] * 50
        results = await asyncio.gather(*(b.publish("t", batch) for b in [bus, other] * 5))
        await other.close()
        placed = [tp for r in results for tp in r]
        assert len(set(placed)) == 500
        partition = placed[0][0]
        assert sorted(o for _, o in placed) == list(range(500))
        assert await bus.end_offsets("t") == {partition: 500, 1 - partition: 0}
