"""Metrics overhead on MLLP throughput: the same `hub serve` with and without, in one run.

Two `hub serve` processes side by side, measured in alternating windows (with, without, with,
...), 16 closed-loop MLLP connections sending DFT^P03 (bench_e2e_mllp.closed_loop):

- with: as shipped: the archive's channel-count triggers (hub.ingest.channel_counts) write in each
  group commit, the latency histograms observe, and /metrics is scraped every SCRAPE_S (much
  more often than Prometheus' default 15 s);
- without: the triggers dropped from that hub's archive after start, nothing scraped.

The histogram calls stay in both (a few hundred ns per message).
Run: `python -m bench.bench_metrics_overhead [seconds] [repeats]`.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import statistics
import sys
import tempfile
from pathlib import Path

import httpx

from bench.bench_e2e_mllp import CONNECTIONS, closed_loop, dft_messages
from bench.whole_hub import HubServe

SCRAPE_S = 1.0
TRIGGERS = (
    "raw_channel_on_insert",
    "raw_channel_on_status",
    "raw_channel_on_answer",
    "raw_channel_on_resend",
)


async def scrape_forever(url: str, stop: asyncio.Event, sizes: list[int]) -> None:
    async with httpx.AsyncClient(timeout=30) as client:
        while not stop.is_set():
            response = await client.get(f"{url}/metrics")
            response.raise_for_status()
            sizes.append(len(response.content))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), SCRAPE_S)


def drop_triggers(data_dir: Path) -> None:
    conn = sqlite3.connect(data_dir / "archive.db", timeout=30)
    try:
        for name in TRIGGERS:
            conn.execute(f"DROP TRIGGER IF EXISTS {name}")  # our own constant names
        conn.commit()
    finally:
        conn.close()


async def measure(seconds: float, repeats: int) -> dict[str, list[float]]:
    messages = dft_messages()
    rates: dict[str, list[float]] = {"with": [], "without": []}
    with tempfile.TemporaryDirectory(prefix="hub-metrics-bench-") as tmp:
        work = Path(tmp)
        async with HubServe(work / "with") as with_, HubServe(work / "without") as without:
            drop_triggers(without.data_dir)
            for _ in range(repeats):
                for kind, hub in (("with", with_), ("without", without)):
                    stop, sizes = asyncio.Event(), []
                    scraper = (
                        asyncio.create_task(scrape_forever(hub.url, stop, sizes)) if kind == "with" else None
                    )
                    rate, _ = await closed_loop(hub.mllp_port, messages, seconds)
                    stop.set()
                    if scraper is not None:
                        await scraper
                    rates[kind].append(rate)
    return rates


def main() -> None:
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 5.0
    repeats = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    rates = asyncio.run(measure(seconds, repeats))
    with_, without = statistics.median(rates["with"]), statistics.median(rates["without"])
    print(f"MLLP DFT^P03, {CONNECTIONS} connections, {repeats} x {seconds:.0f} s alternating windows")
    print(f"  with metrics    : {with_:8.1f} msg/s  {[round(r) for r in rates['with']]}")
    print(f"  without metrics : {without:8.1f} msg/s  {[round(r) for r in rates['without']]}")
    print(f"  ratio with/without: {with_ / without:.3f}")


if __name__ == "__main__":
    main()
