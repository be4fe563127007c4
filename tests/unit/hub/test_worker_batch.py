"""The translation worker keeps a batch read from the raw topic together: one archive commit for
the batch's statuses, and a snapshot's state written before the next message of the batch is diffed."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from hub.bootstrap import build_hub
from hub.pipeline import ingest_bytes
from hub.settings import Settings
from tests.e2e.conftest import REPO

DFT = (REPO / "examples" / "his" / "01_dft_p03_ptca_prt_utf8.hl7").read_bytes()
LEDGER = (REPO / "examples" / "hrp" / "固定资产台账_2024.csv").read_bytes()


def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "hub")


async def test_a_batch_of_messages_is_translated_once_each_and_its_statuses_share_one_commit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with build_hub(settings(tmp_path)) as hub:
        worker = hub.worker("his")
        calls: list[int] = []
        real = worker.adapter.translate

        def counted(*args: Any) -> Any:
            calls.append(1)
            return real(*args)

        monkeypatch.setattr(worker, "adapter", replace(worker.adapter, translate=counted))
        for n in range(5):
            payload = DFT.replace(b"DFT20240612001", f"DFT2024061290{n}".encode())
            await ingest_bytes(hub, "his", payload, message_id=str(n), transport="file", metadata={})
        assert await hub.relay.drain() == 5
        commits: list[str] = []
        hub.archive._conn.set_trace_callback(  # type: ignore[attr-defined]
            lambda sql: commits.append(sql) if sql == "COMMIT" else None
        )
        assert await worker.run_until_idle() == 5
        hub.archive._conn.set_trace_callback(None)  # type: ignore[attr-defined]
        assert len(calls) == 5
        assert commits == ["COMMIT"]  # five statuses, one transaction
        assert (await hub.archive.reconciliation())["his"]["translated"] == 5


async def test_the_same_asset_twice_in_one_batch_is_published_once(tmp_path: Path) -> None:
    """Two exports naming the same assets, read in one batch: the second finds the first's state."""
    async with build_hub(settings(tmp_path)) as hub:
        worker = hub.worker("hrp")
        await ingest_bytes(hub, "hrp", LEDGER, message_id="a.csv", transport="file", metadata={})
        again = LEDGER + b"\r\n"  # other bytes (another record), the same rows
        await ingest_bytes(hub, "hrp", again, message_id="b.csv", transport="file", metadata={})
        assert await hub.relay.drain() == 2
        consumer = await worker._ensure_consumer()
        records = await consumer.poll(max_records=50, timeout_s=1.0)
        assert len(records) == 2
        from hub.ingest.rawtopic import decode_raw

        first, second = await worker.process_batch([decode_raw(r.value) for r in records])
        assert first.events > 0
        assert (second.events, second.unchanged) == (0, first.events)
