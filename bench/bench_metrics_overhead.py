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
import os
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

from bench.bench_e2e_mllp import CONNECTIONS, SAMPLES, closed_loop, dft_messages
from bench.whole_hub import HubServe

SCRAPE_S = 1.0
TRIGGERS = (
    "raw_channel_on_insert",
    "raw_channel_on_insert_done",
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


def cpu_seconds(hub: HubServe) -> float:
    """User + system CPU of the `hub serve` process and its threads so far (/proc/<pid>/stat)."""
    assert hub.proc is not None  # noqa: S101  (started by the context manager)
    fields = Path(f"/proc/{hub.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


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
    rates: dict[str, list[float]] = {"with": [], "without": [], "with cpu": [], "without cpu": []}
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
                    cpu = cpu_seconds(hub)
                    rate, _ = await closed_loop(hub.mllp_port, messages, seconds)
                    stop.set()
                    if scraper is not None:
                        await scraper
                    used = cpu_seconds(hub) - cpu
                    rates[kind].append(rate)
                    rates[f"{kind} cpu"].append(rate * seconds / used if used > 0 else float("nan"))
    return rates


async def archive_path(messages: int, concurrency: int, pairs: int) -> list[tuple[float, float]]:
    """The archive's share of one MLLP message (store, ACK kept, status), with and without the
    triggers, in one process: `pairs` alternating trials of `messages` each; (with, without)
    messages per CPU second of this process (robust to a loaded machine, unlike msg/s)."""
    from hub.ingest.archive import SqliteRawArchive
    from hub.ports import InboundMessage

    payload = (SAMPLES / "01_dft_p03_ptca_prt_utf8.hl7").read_bytes()
    ack = b"MSH|^~\\&|HUB\rMSA|AA|x\r"
    out = []
    with tempfile.TemporaryDirectory(prefix="hub-metrics-archive-") as tmp:
        archives = {kind: SqliteRawArchive(Path(tmp) / kind / "archive.db") for kind in ("with", "without")}
        drop_triggers(Path(tmp) / "without")
        for trial in range(pairs):
            rates = {}
            for kind, archive in archives.items():
                queue = list(range(messages))

                async def sender(
                    archive: SqliteRawArchive = archive, queue: list[int] = queue, trial: int = trial
                ) -> None:
                    while queue:
                        i = queue.pop()
                        body = payload + f"\rNTE|{trial}-{i}".encode()
                        message = InboundMessage("his", body, "mllp", f"{trial}-{i}", "main")
                        ref = (await archive.store(message)).record.raw_ref
                        archive.note_answer(ref, ack)
                        await archive.set_status(
                            ref,
                            status="translated",
                            events=2,
                            failures=0,
                            skipped=1,
                            units=3,
                            mapping_version="m",
                        )

                cpu = time.process_time()
                await asyncio.gather(*(sender() for _ in range(concurrency)))
                rates[kind] = messages / (time.process_time() - cpu)  # messages per CPU second
            out.append((rates["with"], rates["without"]))
        for archive in archives.values():
            archive.close()
    return out


def summary(pairs: list[tuple[float, float]]) -> str:
    ratios = [w / wo for w, wo in pairs]
    with_ = statistics.median(w for w, _ in pairs)
    without = statistics.median(wo for _, wo in pairs)
    return (
        f"  with metrics    : {with_:8.1f} msg/s  {[round(w) for w, _ in pairs]}\n"
        f"  without metrics : {without:8.1f} msg/s  {[round(wo) for _, wo in pairs]}\n"
        f"  ratio with/without: median of pairs {statistics.median(ratios):.3f}"
        f" (min {min(ratios):.3f}, max {max(ratios):.3f})"
    )


def main() -> None:
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 5.0
    repeats = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    rates = asyncio.run(measure(seconds, repeats))
    print(f"hub serve, MLLP DFT^P03, {CONNECTIONS} connections, {repeats} x {seconds:.0f} s alternating")
    print(summary(list(zip(rates["with"], rates["without"], strict=True))))
    print("  per CPU second of hub serve (messages / its CPU seconds in the window):")
    print(summary(list(zip(rates["with cpu"], rates["without cpu"], strict=True))))
    pairs = asyncio.run(archive_path(2000, CONNECTIONS, 2 * repeats))
    print(
        f"archive only (store, ACK kept, status per message), {CONNECTIONS} concurrent, 2000 x {2 * repeats}"
    )
    print(summary(pairs))


if __name__ == "__main__":
    main()
