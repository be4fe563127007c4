"""Where `hub serve`'s memory goes while a ledger is ingested: not part of `make bench`.

    python -m bench.memory_probe ROWS [KEY=VALUE ...]   # e.g. 100000 HUB_FILE_CHUNK_ROWS=1000

Starts `hub serve` (bench/whole_hub.py) on a temp data dir, drops an N-row HRP ledger
(bench/ledger.py) into inbox/hrp/, and samples VmRSS of the parent and its projector child every
half second until /assets shows every row; then prints each process's idle RSS, peak (VmHWM),
RSS a while after (PROBE_AFTER_S, default 3 s; over 30 s shows the idle trim), smaps_rollup, and
the CPU seconds per row of both. KEY=VALUE pairs go into the hub's environment. Compare runs of two
checkouts alternately: the machine's load moves wall time, not CPU time or peaks.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import httpx

from bench.ledger import write_ledger
from bench.whole_hub import HubServe, assets_total, drop_into_inbox, proc_status_kb

ROLLUP = ("Rss", "Anonymous", "Shared_Clean", "Private_Dirty")


def rollup_mb(pid: int) -> dict[str, int]:
    try:
        lines = Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:]
    except OSError:
        return {}
    fields = {line.split(":")[0]: line.split()[1] for line in lines}
    return {k: int(fields[k]) // 1024 for k in ROLLUP if k in fields}


async def probe(work: Path, ledger: Path, rows: int, env: dict[str, str]) -> dict[str, object]:
    async with HubServe(work / "hub", extra_env=env) as hub:
        pids = hub._pids()  # the parent and its projector child
        idle = [proc_status_kb(p, "VmRSS") // 1024 for p in pids]
        samples: list[tuple[float, int, list[int]]] = []
        async with httpx.AsyncClient(base_url=hub.url, timeout=30) as client:
            cpu0, started = hub.cpu_s(), time.perf_counter()
            await asyncio.to_thread(drop_into_inbox, hub.data_dir, "hrp", ledger)
            while (seen := await assets_total(client)) < rows and time.perf_counter() - started < 1800:
                samples.append(
                    (
                        round(time.perf_counter() - started, 1),
                        seen,
                        [proc_status_kb(p, "VmRSS") // 1024 for p in pids],
                    )
                )
                await asyncio.sleep(0.5)
            seconds, cpu = time.perf_counter() - started, hub.cpu_s() - cpu0
            await asyncio.sleep(float(os.environ.get("PROBE_AFTER_S", "3")))
            return {
                "rows": rows,
                "idle_mb": idle,
                "peak_mb": [proc_status_kb(p, "VmHWM") // 1024 for p in pids],
                "after_mb": [proc_status_kb(p, "VmRSS") // 1024 for p in pids],
                "rollup_mb": [rollup_mb(p) for p in pids],
                "seconds": round(seconds, 1),
                "cpu_us_per_row": round(cpu / rows * 1e6),
                "samples": samples[:: max(1, len(samples) // 12)],
            }


def main() -> None:
    rows = int(sys.argv[1])
    env = dict(arg.split("=", 1) for arg in sys.argv[2:])
    with tempfile.TemporaryDirectory(prefix="memory-probe-") as tmp:
        work = Path(tmp)
        ledger = write_ledger(work / f"固定资产台账_{rows}.csv", rows)
        print(json.dumps(asyncio.run(probe(work, ledger, rows, env)), ensure_ascii=False, indent=1))


if __name__ == "__main__":
    main()
