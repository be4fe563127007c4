"""hub.memory: the heap's freed pages go back to the system after a large piece of work."""

from __future__ import annotations

import asyncio
import itertools
import os
import platform
import subprocess
import sys
from pathlib import Path

import pytest

from hub.memory import release_when_quiet

REPO = Path(__file__).resolve().parents[3]

PROBE = """
import sys
from hub.memory import release_freed_memory

def rss_kb():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])

# Objects over pymalloc's 512 bytes come from malloc's heap; the last one keeps the heap's top in
# use, so freeing the others leaves their pages inside the heap, where only a trim returns them.
chunks = [bytes(2000) + bytes([i % 256]) for i in range(40_000)]
pin = bytearray(3000)
del chunks
before = rss_kb()
asked = release_freed_memory()
print(asked, before, rss_kb())
"""


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc's malloc_trim only")
def test_freed_heap_pages_are_returned_to_the_system() -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO), "MALLOC_ARENA_MAX": "2"}
    out = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, check=True)
    asked, before, after = out.stdout.split()
    assert asked == "True"
    assert int(before) - int(after) > 40_000  # of ~80 MB freed, most returned (kB)


async def _trims(cpu_per_interval: list[float]) -> int:
    """How often `release_when_quiet` trims over intervals that each used this much CPU."""
    stop = asyncio.Event()
    used = iter(itertools.accumulate([0.0, *cpu_per_interval]))
    trims = 0

    def cpu() -> float:
        try:
            return next(used)
        except StopIteration:
            stop.set()  # every interval played: the loop ends at its next check
            return float("inf")

    def release() -> bool:
        nonlocal trims
        trims += 1
        return True

    await release_when_quiet(stop, interval_s=0, cpu=cpu, release=release)
    return trims


async def test_freed_memory_is_released_once_work_is_followed_by_a_quiet_interval() -> None:
    assert await _trims([5.0, 3.0, 0.1, 0.0, 0.0]) == 1


async def test_nothing_is_trimmed_while_busy_nor_when_idle_all_along() -> None:
    assert await _trims([0.0, 0.1, 0.0, 0.2]) == 0
    assert await _trims([4.0, 4.0, 4.0]) == 0


async def test_each_burst_is_followed_by_its_own_release() -> None:
    assert await _trims([2.0, 0.0, 0.0, 2.0, 0.1]) == 2
