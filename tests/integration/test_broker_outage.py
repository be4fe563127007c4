"""Ingest survives a broker outage: the archive is the outbox, the relay drains it when Kafka is back.

The test broker keeps data in memory only (TEST-BROKER.md), so the broker is restarted empty on
the same port: what matters is that nothing stored during the outage is lost and that it
reaches the new broker once it answers.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from hub.bus.kafka import KafkaBus
from hub.errors import BusError
from hub.ingest.archive import SqliteRawArchive
from hub.ingest.relay import OutboxRelay
from hub.ports import InboundMessage
from tests.fixtures.kafka import start_broker, stop_broker
from topics.catalogue import raw_topic

pytestmark = [pytest.mark.kafka, pytest.mark.slow]


def message(i: int) -> InboundMessage:
    return InboundMessage(
        system="hrp",
        payload=f"资产编号,资产名称\nZC-{i},呼吸机\n".encode("gbk"),
        transport="file",
        message_id=f"ledger-{i}.csv",
        site="main",
        metadata={"filename": f"ledger-{i}.csv"},
    )


async def test_ingest_keeps_storing_while_broker_is_down_and_backlog_drains_after(tmp_path: Path) -> None:
    """Stores succeed during the outage, publishing fails without losing anything, and the backlog drains later."""
    proc, bootstrap = start_broker()
    port = int(bootstrap.rsplit(":", 1)[1])
    archive = SqliteRawArchive(tmp_path / "archive.db")
    bus = KafkaBus(bootstrap, request_timeout_ms=3000)
    topic = raw_topic("hrp").full_name()
    try:
        await bus.start()
        await bus.ensure_topics([raw_topic("hrp")])
        relay = OutboxRelay(archive, bus)
        await archive.store(message(0))
        assert await relay.publish_pending() == 1

        stop_broker(proc)  # the outage
        stored = [await archive.store(message(i)) for i in range(1, 4)]
        assert all(not s.duplicate for s in stored)  # senders would have been answered: the bytes are durable
        with pytest.raises(BusError):
            await asyncio.wait_for(relay.publish_pending(), timeout=60)
        assert [r.message_id for r, _ in await archive.unpublished()] == [
            "ledger-1.csv",
            "ledger-2.csv",
            "ledger-3.csv",
        ]

        proc, _ = start_broker(port=port)  # Kafka is back (empty: the test broker is memory-only)
        drained = 0
        for _ in range(30):
            try:
                # A real broker comes back with its topics; this memory-only one needs them again.
                await bus.ensure_topics([raw_topic("hrp")])
                drained += await relay.publish_pending()
            except BusError:
                await asyncio.sleep(1)  # the client is still reconnecting
                continue
            if not await archive.unpublished():
                break
        assert drained == 3
        assert await archive.unpublished() == []

        reader = await bus.consumer([topic], group=None)
        seen: list[str] = []
        for _ in range(20):
            seen += [json.loads(r.value)["message_id"] for r in await reader.poll(timeout_s=0.5)]
            if len(seen) >= 3:
                break
        await reader.close()
        assert sorted(seen) == ["ledger-1.csv", "ledger-2.csv", "ledger-3.csv"]
    finally:
        await bus.close()
        archive.close()
        stop_broker(proc)
