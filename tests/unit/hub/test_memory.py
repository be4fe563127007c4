"""hub.memory: the heap's freed pages go back to the system after a large piece of work."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from pathlib import Path

import pytest

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
