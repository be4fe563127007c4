"""End to end, as a user runs it: an N-row HRP ledger dropped into the inbox of `hub serve` until `/assets`
shows all rows.

Measured in the same run, on the same generated file (bench/ledger.py; N = 100,000 x BENCH_SCALE):
- the ceiling: `csv` + SQLite batched insert of the same rows (WAL, synchronous=FULL, 1,000 a commit);
- the slowest stage alone: the HRP translator (`ADAPTER.translate`) on the whole file, in this process;
- the hub: a fresh `hub serve` subprocess (embedded bus, SQLite), the file renamed into inbox/hrp/,
  `/assets?limit=1` polled until its total reaches N; peak RSS (VmHWM) and data-dir growth, for N/10
  and N rows (memory should not grow with the file);
- `hub ingest hrp FILE` on a fresh data dir: wall time until it returns (the file's events on the bus;
  without --wait it does not wait for the read models).
Each hub run stops at BENCH_CAP_S (default 600 s) and then reports "not finished" with the rate so far.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import subprocess  # nosec B404: TimeoutExpired only
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

import httpx

from adapters.hrp import ADAPTER
from bench.bench_hrp import translation_input
from bench.ledger import csv_sqlite_ceiling, timed, write_ledger
from bench.report import load_note
from bench.whole_hub import HubServe, assets_total, cap_s, drop_into_inbox, hub_env, kill_group, scaled, spawn

if TYPE_CHECKING:
    from bench.report import Report

FULL_ROWS = 100_000
REPEATS = 3
POLL_S = 0.5


def translate_alone(path: Path) -> float:
    """Seconds for the HRP translator to decode, parse and translate the whole file once."""
    raw, payload, mapping, ctx = translation_input(path)
    started = time.perf_counter()
    ADAPTER.translate(raw, payload, mapping, ctx)
    return time.perf_counter() - started


class Visible:
    """One inbox run: seconds until all rows were visible (or the cap), rows seen, peak RSS, growth."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self.seen = 0
        self.finished = False
        self.peak_mb = self.idle_mb = self.grown_mb = 0.0
        self.cpu_s = 0.0  # both processes of hub serve, from the drop until visible


async def inbox_to_visible(
    work: Path, ledger: Path, rows: int, tag: str, env: dict[str, str] | None = None
) -> Visible:
    out = Visible()
    async with HubServe(work / f"hub-{tag}", extra_env=env or {}) as hub:
        out.idle_mb = hub.idle_rss_kb / 1024
        async with httpx.AsyncClient(base_url=hub.url, timeout=30.0) as client:
            cpu_at_start = hub.cpu_s()
            started = time.perf_counter()
            await asyncio.to_thread(drop_into_inbox, hub.data_dir, "hrp", ledger)
            deadline = started + cap_s()
            while time.perf_counter() < deadline:
                out.seen = await assets_total(client)
                if out.seen >= rows:
                    out.finished = True
                    break
                await asyncio.sleep(POLL_S)
            out.seconds = time.perf_counter() - started
            out.cpu_s = hub.cpu_s() - cpu_at_start
        out.peak_mb = hub.peak_rss_mb()
        out.grown_mb = hub.grown_mb()
    return out


def _assets_in(data_dir: Path) -> int:
    """Rows in the registry read model so far (read-only; 0 while it does not exist yet)."""
    db = data_dir / "readmodels.db"
    if not db.exists():
        return 0
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as conn:
            return int(conn.execute("SELECT count(*) FROM asset_registry_assets").fetchone()[0])
    except sqlite3.Error:
        return 0


async def hub_ingest(work: Path, ledger: Path) -> tuple[float, bool, int]:
    """`hub ingest hrp FILE` on a fresh data dir: (seconds, returned?, assets visible when it stopped)."""
    data_dir = work / "hub-ingest"
    data_dir.mkdir()
    proc = spawn(
        [sys.executable, "-m", "hub", "ingest", "hrp", str(ledger)],
        hub_env(data_dir),
        work,
        work / "ingest.log",
    )
    started = time.perf_counter()
    try:
        with contextlib.suppress(subprocess.TimeoutExpired):
            await asyncio.to_thread(proc.wait, cap_s())
        seconds = time.perf_counter() - started
        returned = proc.poll() is not None
    finally:
        kill_group(proc)
    return seconds, returned, _assets_in(data_dir)


async def run(report: Report) -> None:
    rows = scaled(FULL_ROWS, 1_000)
    small = max(rows // 10, 100)
    with tempfile.TemporaryDirectory(prefix="bench-e2e-file-") as tmp:
        work = Path(tmp)
        note = load_note()
        ledger = write_ledger(work / f"固定资产台账_{rows}.csv", rows)
        small_ledger = write_ledger(work / f"固定资产台账_{small}.csv", small, seed=7)
        size_mb = ledger.stat().st_size / 1e6
        ceiling = [
            rows / timed(csv_sqlite_ceiling, ledger, work / f"ceiling-{i}.db")[1] for i in range(REPEATS)
        ]
        report.add(
            "e2e-file",
            f"ceiling: csv + SQLite batched insert, {rows:,} rows",
            0,
            "rows/s",
            samples=ceiling,
            note=f"{size_mb:.1f} MB GBK CSV; {note}",
        )
        translator = [rows / translate_alone(ledger) for _ in range(REPEATS if rows <= 20_000 else 2)]
        report.add(
            "e2e-file",
            f"HRP translator alone on the same file, {rows:,} rows",
            0,
            "rows/s",
            samples=translator,
            note=f"one core, in-process; {note}",
        )
        ceiling_rate, translator_rate = report.rows[-2].value, report.rows[-1].value

        runs: dict[int, Visible] = {}
        for n, path in ((small, small_ledger), (rows, ledger)):
            note = load_note()
            runs[n] = seen = await inbox_to_visible(work, path, n, str(n))
            rate = seen.seen / seen.seconds
            status = (
                f"{seen.seconds:,.1f} s"
                if seen.finished
                else f"not finished after {seen.seconds:,.0f} s ({seen.seen:,} of {n:,} visible)"
            )
            report.add(
                "e2e-file",
                f"{n:,}-row ledger into the inbox until /assets shows all (vs ceiling)",
                rate,
                "rows/s",
                peer=ceiling_rate,
                peer_label="csv+SQLite",
                finished=seen.finished,
                aim=">= 5% of ceiling",
                note=f"hub serve, embedded bus, SQLite; {status}; {note}",
            )
            report.add(
                "e2e-file",
                f"{n:,}-row ledger into the inbox until /assets shows all (vs translator)",
                rate,
                "rows/s",
                peer=translator_rate,
                peer_label="HRP translator alone",
                finished=seen.finished,
                aim=">= 50% of translator",
                note=status,
            )
            ended = "finished" if seen.finished else "capped"
            report.add(
                "e2e-file",
                f"peak RSS of hub serve, {n:,}-row ledger",
                seen.peak_mb,
                "MB",
                aim="<= 400",
                note=f"VmHWM; idle {seen.idle_mb:,.0f} MB; {ended}",
            )
            report.add(
                "e2e-file",
                f"CPU per row of hub serve (both processes), {n:,}-row ledger",
                seen.cpu_s / max(seen.seen, 1) * 1e6,
                "us/row",
                peer=1e6 / translator_rate,
                peer_label="HRP translator alone",
                note="CPU seconds from the drop until visible: what the machine's load cannot change",
            )
            report.add(
                "e2e-file",
                f"data dir growth, {n:,}-row ledger",
                seen.grown_mb,
                "MB",
                note=f"file {path.stat().st_size / 1e6:.1f} MB",
            )
        # The same small file with everything in one process (HUB_SERVE_PROCESSES=1): what the
        # projector child buys on this machine, same run.
        note = load_note()
        one = {"HUB_SERVE_PROCESSES": "1"}
        single = await inbox_to_visible(work, small_ledger, small, f"{small}-1p", one)
        report.add(
            "e2e-file",
            f"{small:,}-row ledger to visible, default (2 processes) vs HUB_SERVE_PROCESSES=1",
            small / runs[small].seconds,
            "rows/s",
            peer=single.seen / single.seconds,
            peer_label="one process",
            finished=runs[small].finished and single.finished,
            note=f"one process: {single.seconds:,.1f} s, peak RSS {single.peak_mb:,.0f} MB; {note}",
        )
        report.add(
            "e2e-file",
            f"peak RSS growth, {rows:,} vs {small:,} rows",
            runs[rows].peak_mb,
            "MB",
            peer=runs[small].peak_mb,
            peer_label=f"{small:,} rows",
            aim="ratio ~1 (bounded)",
        )

        note = load_note()
        seconds, returned, visible = await hub_ingest(work, ledger)
        outcome = (
            f"returned with the events on the bus; {visible:,} assets in the read model (no --wait)"
            if returned
            else f"not returned after {seconds:,.0f} s; {visible:,} of {rows:,} assets visible"
        )
        report.add(
            "e2e-file",
            f"`hub ingest hrp` of the {rows:,}-row ledger, wall time to return",
            seconds if returned else visible / seconds,
            "s" if returned else "rows/s (so far)",
            finished=returned,
            note=f"{outcome}; {note}",
        )
