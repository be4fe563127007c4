"""Two `hub serve` processes watching one inbox: both may take a file; neither fails for it.

Found by the scale-out bench: the process that lost the race to answer a file raised
FileNotFoundError, which ended its whole `hub serve`. Here two watchers share one hub's archive
and folder (as two processes share a data dir) and handle the same file at once.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from hub.bootstrap import build_hub
from hub.pipeline import drain
from hub.settings import Settings

REPO = Path(__file__).resolve().parents[3]
LEDGER = REPO / "examples" / "hrp" / "固定资产台账_2024.csv"


async def test_two_watchers_answer_one_file_once_and_neither_fails(tmp_path: Path) -> None:
    async with build_hub(Settings(data_dir=tmp_path / "hub")) as hub:
        first, second = hub.inbox, hub.inbox  # two watchers, as two processes would have
        folder = hub.settings.inbox_dir / "hrp"
        dropped = folder / LEDGER.name
        dropped.write_bytes(LEDGER.read_bytes())

        async def translate_meanwhile() -> None:
            for _ in range(100):  # bounded: until both watchers have answered
                await drain(hub)
                if not dropped.exists():
                    return
                await asyncio.sleep(0.05)

        await asyncio.gather(
            first.handle("hrp", dropped), second.handle("hrp", dropped), translate_meanwhile()
        )
        answered = sorted(p.name for p in (folder / "processed").iterdir())
        assert not dropped.exists()
        assert [n for n in answered if not n.endswith(".error.txt")] == [LEDGER.name]  # moved once
        assert all(n == f"{LEDGER.name}.error.txt" for n in answered if n.endswith(".error.txt"))
        # and a watcher that scans a file the other has already answered passes over it
        assert await first.scan_once() == 0


async def test_a_file_gone_before_it_is_read_is_left_to_whoever_took_it(tmp_path: Path) -> None:
    async with build_hub(Settings(data_dir=tmp_path / "hub")) as hub:
        watcher = hub.inbox
        gone = hub.settings.inbox_dir / "hrp" / "taken.csv"
        await watcher.handle("hrp", gone)  # no exception: another process took it
        received = sum(c.get("received", 0) for c in (await hub.archive.reconciliation()).values())
        assert received == 0  # nothing archived for a file that was not there
