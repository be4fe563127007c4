"""Handing freed heap back to the system after a large piece of work (glibc's malloc_trim).

A file of 100,000 rows is translated a chunk at a time, but the chunks' objects come and go in
the malloc heap, and glibc returns the freed pages only from the heap's top: after the file the
process keeps its high-water mark as RSS until the next one. `malloc_trim(0)` releases the free
pages anywhere in the heap (MADV_DONTNEED). It costs milliseconds, so it is called once per large
piece of work (after a chunked file; in `hub serve`, once a burst of work is followed by a quiet
interval), never per message. Elsewhere than glibc it does nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import ctypes.util
import platform
import sys
import time
from functools import cache
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable


@cache
def _malloc_trim() -> Any:
    if not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc":
        return None
    libc_name = ctypes.util.find_library("c")
    return getattr(ctypes.CDLL(libc_name), "malloc_trim", None) if libc_name else None


def release_freed_memory() -> bool:
    """Return the heap's free pages to the system; whether anything could be asked (glibc)."""
    trim = _malloc_trim()
    if trim is None:
        return False
    trim(0)
    return True


QUIET_INTERVAL_S = 30.0
BUSY_CPU_S = 1.0  # CPU seconds in an interval that count as work done (a file, a burst of messages)


async def release_when_quiet(
    stop: asyncio.Event,
    *,
    interval_s: float = QUIET_INTERVAL_S,
    cpu: Callable[[], float] = time.process_time,
    release: Callable[[], bool] = release_freed_memory,
) -> None:
    """Until `stop`: once work (BUSY_CPU_S of CPU in an interval) is followed by a quiet interval,
    hand the freed heap back (`release`, in a thread). After a burst, `hub serve`'s processes
    otherwise keep their peak as RSS while idle; during the burst nothing is trimmed (the heap would
    only grow back), and an idle process is never woken for it."""
    worked = False
    last = cpu()
    while not stop.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=interval_s)
        now = cpu()
        busy = now - last >= BUSY_CPU_S
        last = now
        if busy:
            worked = True
        elif worked:
            await asyncio.to_thread(release)
            worked = False
