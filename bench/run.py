"""`make bench`: run every bench/bench_*.py module's `async def run(report)` and write bench/results.md
and bench/results.json (same rows, with peers, ratios and ranges; see bench/report.py).

Work files go to a temporary directory; the Kafka benchmarks start their own test broker and
PostgreSQL benchmarks use HUB_TEST_PG_URL or the local server, skipping (and saying so) when absent.
The end-to-end benchmarks (bench_e2e_*) run real `hub serve` processes; BENCH_SCALE (default 1)
shrinks their sizes and durations for a quick run.
"""

from __future__ import annotations

import asyncio
import importlib
import pkgutil
import sys
import time
from pathlib import Path

from bench.report import Report

HERE = Path(__file__).parent


async def main(selected: list[str]) -> Report:
    report = Report()
    names = sorted(m.name for m in pkgutil.iter_modules([str(HERE)]) if m.name.startswith("bench_"))
    for name in names:
        if selected and not any(s in name for s in selected):
            continue
        module = importlib.import_module(f"bench.{name}")
        if not hasattr(module, "run"):
            # A standalone study (it starts its own processes and prints its own table).
            report.skip(name, f"a standalone study: run it alone, `python -m bench.{name}`")
            continue
        print(f"== {name}")
        started = time.perf_counter()
        await module.run(report)
        print(f"   ({time.perf_counter() - started:.1f} s)")
    return report


if __name__ == "__main__":
    result = asyncio.run(main(sys.argv[1:]))
    out = HERE / "results.md"
    result.write(out)
    print(f"wrote {out} and {out.with_suffix('.json')}")
