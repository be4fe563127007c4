"""The outbox relay on the archive's fresh feed: every archived record goes out once, whatever the order
of commits, sweeps, failed publishes and restarts (hub.ingest.fresh, hub.ingest.relay)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import pytest

from hub.errors import BusError
from hub.ingest import relay as relay_mod
from hub.ingest.archive import SqliteRawArchive
from hub.ingest.fresh import FreshFeed
from hub.ingest.relay import OutboxRelay
from hub.ports import InboundMessage

if TYPE_CHECKING:
    from collections.abc import Sequence
    from pathlib import Path

    from hub.ports import OutRecord


class Bus:
    """Records what was published (raw ref and metadata per record); fails the next publish on request."""

    def __init__(self) -> None:
        self.published: list[tuple[str, dict[str, str]]] = []
        self.fail_next = False

    async def publish(self, topic: str, records: Sequence[OutRecord]) -> list[tuple[int, int]]:
        if self.fail_next:
            self.fail_next = False
            raise BusError("broker away")
        for r in records:
            body = json.loads(r.value)
            self.published.append((body["raw_ref"], body["metadata"]))
        return [(0, i) for i in range(len(records))]

    def refs(self) -> list[str]:
        return [ref for ref, _ in self.published]


async def store(archive: SqliteRawArchive, n: int, start: int = 0) -> list[str]:
    refs = []
    for i in range(start, start + n):
        outcome = await archive.store(
            InboundMessage(
                system="his",
                payload=f"MSH|^~\\&|A|B|||||DFT^P03|C{i}|P|2.5\r".encode(),
                transport="mllp",
                message_id=f"C{i}",
                site="main",
                metadata={"message_type": "DFT^P03"},
            )
        )
        refs.append(outcome.record.raw_ref)
    return refs


def relay_for(archive: SqliteRawArchive, bus: Bus) -> OutboxRelay:
    return OutboxRelay(archive, bus)  # type: ignore[arg-type]  # the fake bus publishes only


async def test_records_before_and_after_the_relay_follows_go_out_once_in_order(tmp_path: Path) -> None:
    archive, bus = SqliteRawArchive(tmp_path / "a.db"), Bus()
    relay = relay_for(archive, bus)
    before = await store(archive, 3)  # a backlog from before the relay started: found by its sweep
    assert await relay.drain() == 3
    after = await store(archive, 4, start=3)
    assert len(archive.fresh) == 4  # handed over from memory, not read back
    assert await relay.drain() == 4
    assert bus.refs() == before + after
    assert await archive.unpublished() == []
    archive.close()


async def test_a_sweep_overlapping_the_feed_publishes_each_record_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    archive, bus = SqliteRawArchive(tmp_path / "a.db"), Bus()
    relay = relay_for(archive, bus)
    await relay.drain()  # follows the feed from here on
    refs = await store(archive, 5)
    monkeypatch.setattr(relay_mod, "SWEEP_S", 0.0)  # every call sweeps: the feed holds the same records
    assert await relay.publish_pending(limit=2) == 2  # a sweep with a backlog left: the next sweeps too
    monkeypatch.setattr(relay_mod, "SWEEP_S", 3600.0)
    await relay.drain()
    assert bus.refs() == refs
    assert await archive.unpublished() == []
    archive.close()


async def test_records_taken_from_the_feed_when_a_publish_fails_go_out_after_it(tmp_path: Path) -> None:
    archive, bus = SqliteRawArchive(tmp_path / "a.db"), Bus()
    relay = relay_for(archive, bus)
    await relay.drain()
    refs = await store(archive, 3)
    bus.fail_next = True
    with pytest.raises(BusError):
        await relay.publish_pending()
    assert len(archive.fresh) == 0  # taken, not published: only the archive has them now
    later = await store(archive, 2, start=3)  # in the feed: they must not overtake the three
    assert await relay.drain() == 5
    assert bus.refs() == refs + later
    archive.close()


@pytest.mark.parametrize("feed", [FreshFeed(kept=2), FreshFeed(kept_bytes=100)], ids=["records", "bytes"])
async def test_an_overflowing_feed_falls_back_on_the_archive(tmp_path: Path, feed: FreshFeed) -> None:
    """Past its records or its bytes (a broker outage during a file import) the feed lets go of
    what it held; the relay finds it all in the archive."""
    archive, bus = SqliteRawArchive(tmp_path / "a.db"), Bus()
    archive.fresh = feed
    relay = relay_for(archive, bus)
    await relay.drain()
    refs = await store(archive, 5)
    assert archive.fresh.lost
    await relay.drain()
    assert bus.refs() == refs
    archive.close()


async def test_records_stored_before_a_crash_are_published_after_the_restart(tmp_path: Path) -> None:
    """ACKed (durable) but not yet published when the process ended: the feed is gone, the outbox is not."""
    archive, bus = SqliteRawArchive(tmp_path / "a.db"), Bus()
    await relay_for(archive, bus).drain()
    refs = await store(archive, 3)
    archive.close()  # the process ends before its relay took them
    again = SqliteRawArchive(tmp_path / "a.db")
    assert await relay_for(again, bus).drain() == 3
    assert bus.refs() == refs
    again.close()


async def test_a_reopened_record_goes_out_again_with_its_new_metadata(tmp_path: Path) -> None:
    archive, bus = SqliteRawArchive(tmp_path / "a.db"), Bus()
    relay = relay_for(archive, bus)
    await relay.drain()
    (ref,) = await store(archive, 1)
    await archive.reopen(ref, {"message_type": "DFT^P03", "corrected": "yes"})
    await relay.drain()
    await archive.reopen(ref, {"message_type": "DFT^P03", "corrected": "again"})
    await relay.drain()
    assert bus.published == [
        (ref, {"message_type": "DFT^P03", "corrected": "yes"}),
        (ref, {"message_type": "DFT^P03", "corrected": "again"}),
    ]
    archive.close()
