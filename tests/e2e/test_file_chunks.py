"""A file through the real wiring in chunks: the same events, a crash between chunks, the memory budget.

In-process: `build_hub` on a real data dir (SQLite archive, embedded bus, SQLite read models), the
sample HRP ledger (531 rows, 524 good) stored with `ingest_path` and translated a few dozen rows
a chunk (HUB_FILE_CHUNK_ROWS), as `hub serve` and `hub ingest` run it.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from hub.bootstrap import Hub, build_hub
from hub.cli.ingest import to_bus
from hub.faults import FaultInjected, arm
from hub.pipeline import drain, ingest_path
from hub.settings import Settings
from tests.e2e.conftest import REPO

LEDGER = REPO / "examples" / "hrp" / "固定资产台账_2024.csv"
GOOD_ROWS = 524


def settings_for(tmp_path: Path, **extra: Any) -> Settings:
    return Settings(data_dir=tmp_path / "hub", **extra)


async def asset_events(hub: Hub) -> list[dict[str, Any]]:
    consumer = await hub.bus.consumer(["canonical.asset.v1"], group=None)
    out: list[dict[str, Any]] = []
    while batch := await consumer.poll(max_records=5000, timeout_s=0.2):
        out += [json.loads(r.value) for r in batch]
    await consumer.close()
    return out


def registry(data_dir: Path) -> list[str]:
    with sqlite3.connect(data_dir / "readmodels.db") as conn:
        return [r[0] for r in conn.execute("SELECT asset_id FROM asset_registry_assets")]


async def test_a_file_of_several_chunks_publishes_the_same_events_as_one(tmp_path: Path) -> None:
    """531 rows at 100 a chunk: six chunks, and the log holds exactly the events of one whole run."""
    ids = []
    for name, rows in (("whole", 100_000), ("chunked", 100)):
        async with build_hub(settings_for(tmp_path / name, file_chunk_rows=rows)) as hub:
            stored = await ingest_path(hub, "hrp", LEDGER)
            await hub.relay.drain()
            payload = await hub.archive.payload(stored.record.raw_ref)
            outcome = await hub.workers["hrp"].process(stored.record, payload)
            assert outcome.chunks == (1 if name == "whole" else 6)
            assert (outcome.events, outcome.failed, outcome.units) == (GOOD_ROWS, 6, 531)
            status = await hub.archive.status(stored.record.raw_ref)
            assert status is not None
            assert (status.status, status.events, status.failures) == ("dead_lettered", GOOD_ROWS, 6)
            ids.append([e["event_id"] for e in await asset_events(hub)])
    assert len(ids[0]) == GOOD_ROWS
    assert ids[1] == ids[0]


@pytest.mark.slow
async def test_a_crash_between_chunks_then_a_rerun_lands_every_row_once(tmp_path: Path) -> None:
    """Killed after the third chunk: the status stays pending, the re-run publishes the rest; the
    registry holds each asset once and the log no event twice."""
    settings = settings_for(tmp_path, file_chunk_rows=100)
    async with build_hub(settings) as hub:
        stored = await ingest_path(hub, "hrp", LEDGER)
        await hub.relay.drain()
        worker = hub.workers["hrp"]
        arm("translation.between_chunks:raise:3")
        try:
            with pytest.raises(FaultInjected):
                await worker.run_until_idle()
        finally:
            arm(None)
        status = await hub.archive.status(stored.record.raw_ref)
        assert status is not None
        assert status.status == "pending"
        published = await asset_events(hub)
        assert 0 < len(published) < GOOD_ROWS
        await worker.close()  # what the supervisor does: start again from the committed offset
        await to_bus(hub)
        await drain(hub)
        events = await asset_events(hub)
        assert len({e["event_id"] for e in events}) == len(events) == GOOD_ROWS
        status = await hub.archive.status(stored.record.raw_ref)
        assert status is not None
        assert (status.status, status.events) == ("dead_lettered", GOOD_ROWS - len(published))
        assets = registry(settings.data_dir)
        assert len(assets) == len(set(assets)) == GOOD_ROWS
        letters = await hub.dead_letters.query(system="hrp")
        assert len([d for d in letters if d.status == "open"]) == 6


async def test_a_file_over_the_memory_budget_is_refused_whole_with_the_reason(tmp_path: Path) -> None:
    """Refused before a row is read: one dead letter naming the file and the figures, nothing on the
    bus, the raw kept byte for byte (and translated by `hub dlq retry` once the budget allows)."""
    settings = settings_for(tmp_path, file_memory_budget_mb=1)
    big = tmp_path / "固定资产台账_big.csv"
    big.write_bytes(LEDGER.read_bytes() * 20)  # ~1.5 MB: ~3 MB to read as CSV
    async with build_hub(settings) as hub:
        stored = await ingest_path(hub, "hrp", big)
        await to_bus(hub)
        status = await hub.archive.status(stored.record.raw_ref)
        assert status is not None
        assert (status.status, status.events, status.failures) == ("dead_lettered", 0, 1)
        [letter] = await hub.dead_letters.query(system="hrp")
        assert letter.code == "over_budget"
        assert "固定资产台账_big.csv" in letter.reason
        assert "memory budget of 1 MB" in letter.reason
        assert "HUB_FILE_MEMORY_BUDGET_MB" in letter.reason
        assert await asset_events(hub) == []
        assert await hub.archive.payload(stored.record.raw_ref) == big.read_bytes()
