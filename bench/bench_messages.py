"""Message browser: `RawArchive.browse` (GET /messages) p50/p99 over a large SQLite archive.

The archive is filled by direct INSERTs of realistic metadata rows (HL7 over MLLP, three types,
four systems, one minute apart; payloads left tiny: browse never reads them), then each query
shape runs REPEAT times. Run: `python -m bench.bench_messages [ROWS]` (default 1,000,000).
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from hub.ingest.archive import SqliteRawArchive
from hub.ports import RawQuery

if TYPE_CHECKING:
    from collections.abc import Sequence

    from bench.report import Report

REPEAT = 30
SYSTEMS = ("his", "hrp", "spd", "oa")
TYPES = ("DFT^P03", "ADT^A01", "ORU^R01")
START = datetime(2024, 1, 1, tzinfo=UTC)


def fill(path: Path, rows: int) -> None:
    archive = SqliteRawArchive(path)
    archive.close()
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA synchronous=OFF")
    batch = []
    for i in range(rows):
        system = SYSTEMS[i % 4]
        meta = (
            json.dumps({"message_type": TYPES[i % 3]})
            if system == "his"
            else json.dumps({"filename": f"f{i}.csv"})
        )
        status = "dead_lettered" if i % 97 == 0 else "translated"
        batch.append(
            (
                f"{system}:{i:040x}",
                system,
                "main",
                f"MSG{i:09d}",
                f"{i:064x}",
                120,
                "mllp" if system == "his" else "file",
                (START + timedelta(minutes=i)).isoformat(),
                meta,
                b"x",
                1,
                status,
            )
        )
        if len(batch) == 50_000:
            _insert(conn, batch)
            batch = []
    _insert(conn, batch)
    conn.close()


def _insert(conn: sqlite3.Connection, batch: Sequence[tuple[object, ...]]) -> None:
    conn.executemany(
        "INSERT INTO raw_messages (raw_ref, system, site, message_id, sha256, size, transport, received_at,"
        " metadata, payload, published, status) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
        batch,
    )
    conn.commit()


async def measure(path: Path, rows: int) -> dict[str, dict[str, float]]:
    archive = SqliteRawArchive(path)
    mid = START + timedelta(minutes=rows // 2)
    shapes = {
        "newest page": RawQuery(limit=50),
        "control_id": RawQuery(control_id=f"MSG{rows // 3:09d}"),
        "system+status": RawQuery(system="his", status="dead_lettered", limit=50),
        "one hour": RawQuery(received_from=mid, received_to=mid + timedelta(hours=1)),
        "type": RawQuery(message_type="ADT^A01", limit=50),
        "page 1000": RawQuery(limit=50, offset=50_000),
    }
    out = {}
    try:
        for name, query in shapes.items():
            times = []
            for _ in range(REPEAT):
                t0 = time.perf_counter()
                await archive.browse(query)
                times.append((time.perf_counter() - t0) * 1000)
            times.sort()
            out[name] = {"p50_ms": statistics.median(times), "p99_ms": times[int(len(times) * 0.99) - 1]}
    finally:
        archive.close()
    return out


async def run(report: Report, rows: int = 1_000_000) -> None:
    """`make bench`: each query shape's p99 over a 1,000,000-message archive."""
    with tempfile.TemporaryDirectory(prefix="bench-messages-") as tmp:
        path = Path(tmp) / "archive.db"
        fill(path, rows)
        for name, figures in (await measure(path, rows)).items():
            report.add(
                "messages",
                f"GET /messages ({name}) p99, {rows:,} archived messages, SQLite",
                figures["p99_ms"],
                "ms",
                note=f"median {figures['p50_ms']:.1f} ms; RawArchive.browse, {REPEAT} runs",
            )


def main() -> None:
    rows = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "archive.db"
        t0 = time.perf_counter()
        fill(path, rows)
        print(f"filled {rows:,} rows in {time.perf_counter() - t0:.1f} s")
        for name, figures in asyncio.run(measure(path, rows)).items():
            print(f"{name:>14}: p50 {figures['p50_ms']:8.1f} ms   p99 {figures['p99_ms']:8.1f} ms")


if __name__ == "__main__":
    main()
