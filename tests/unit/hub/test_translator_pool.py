"""ACK-time translation in a pool process: the same result as in-process, handed to the worker
(translated once), and a broken pool replaced with the message translated in-process."""

from __future__ import annotations

import os
import signal
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from adapters.base import TranslateContext
from hub.bootstrap import build_hub
from hub.ingest import mllp as mllp_module
from hub.pipeline import drain
from hub.ports import RawRecord
from hub.settings import Settings
from hub.translation.pool import TranslatorPool, Unavailable
from hub.translation.registry import ADAPTERS
from hub.translation.safe import run_translator
from hub.translation.worker import MappingSource
from tests.e2e.conftest import REPO

HIS = REPO / "examples" / "his"
SECRET = b"k" * 32


def record(payload: bytes) -> RawRecord:
    return RawRecord(
        raw_ref="his:test",
        system="his",
        site="main",
        message_id="m1",
        sha256="0" * 64,
        size=len(payload),
        transport="mllp",
        received_at=datetime(2024, 6, 12, tzinfo=UTC),
        metadata={},
    )


@pytest.mark.parametrize("sample", ["01_dft_p03_ptca_prt_utf8.hl7", "14_dft_p03_unknown_department.hl7"])
async def test_the_pool_translates_as_the_hub_process_does(sample: str) -> None:
    payload = (HIS / sample).read_bytes()
    adapter = ADAPTERS["his"]
    mapping = MappingSource(adapter, None, secret=SECRET).current()
    ctx = TranslateContext(
        site="main", tz=Settings().zone, adapter_version=adapter.version, mapping_version="stale"
    )
    pool = TranslatorPool(1, None, SECRET)
    try:
        with pytest.raises(Unavailable):  # still starting: the caller translates in-process meanwhile
            await pool.translate("his", record(payload), payload, ctx)
        assert await pool.ready(60)
        version, pooled = await pool.translate("his", record(payload), payload, ctx)
    finally:
        pool.close()
    here = run_translator(adapter, record(payload), payload, mapping, replace(ctx, mapping_version=version))
    assert version == mapping.version  # the pool says which mapping it used, not the caller's guess
    assert [e.event.event_id for e in pooled.events] == [e.event.event_id for e in here.events]
    assert pooled.failures == here.failures


async def test_a_killed_pool_process_is_replaced() -> None:
    payload = (HIS / "01_dft_p03_ptca_prt_utf8.hl7").read_bytes()
    ctx = TranslateContext(site="main", tz=Settings().zone, adapter_version="x", mapping_version="x")
    pool = TranslatorPool(1, None, SECRET)
    try:
        assert await pool.ready(60)
        await pool.translate("his", record(payload), payload, ctx)
        (lane,) = pool._lanes
        os.kill(lane.process.pid or 0, signal.SIGKILL)
        lane.process.join(5)
        with pytest.raises(Unavailable):
            await pool.translate("his", record(payload), payload, ctx)
        assert await pool.ready(60)  # a new process
        _, again = await pool.translate("his", record(payload), payload, ctx)
        assert again.events
    finally:
        pool.close()


async def test_mllp_translates_in_the_pool_once_and_the_worker_reuses_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    inline: list[int] = []
    real = mllp_module.run_translator  # type: ignore[attr-defined]

    def counted(*args: Any, **kwargs: Any) -> Any:
        inline.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(mllp_module, "run_translator", counted)
    dft = (HIS / "01_dft_p03_ptca_prt_utf8.hl7").read_bytes()
    async with build_hub(Settings(data_dir=tmp_path / "hub", mllp_translate_processes=1)) as hub:
        assert await hub.mllp._pool.ready(60)  # type: ignore[union-attr]
        for n in range(3):
            ack = await hub.mllp.handle(dft.replace(b"DFT20240612001", f"DFT2024061280{n}".encode()), {})
            assert b"MSA|AA" in ack
        stats = await drain(hub)
        assert stats.translated == 3
        assert hub.worker("his").reused == 3
    assert inline == []  # nothing translated in the hub's process: once, in the pool
