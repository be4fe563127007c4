"""Handing freed heap back to the system after a large piece of work (glibc's malloc_trim).

A file of 100,000 rows is translated a chunk at a time, but the chunks' objects come and go in
the malloc heap, and glibc returns the freed pages only from the heap's top: after the file the
process keeps its high-water mark as RSS until the next one. `malloc_trim(0)` releases the free
pages anywhere in the heap (MADV_DONTNEED). It costs milliseconds, so it is called once per large
piece of work, never per message. Elsewhere than glibc it does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import platform
import sys
from functools import cache
from typing import Any


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
