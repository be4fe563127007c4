"""200 idle MLLP connections against a running `hub serve`: memory stays bounded, all time out.

Unauthenticated peers that connect and say nothing (or begin a frame and stop) must not pin the
listener's memory or sockets. Half the connections send nothing, half begin a frame of 4 KiB
and stop; the server's RSS growth is measured (/proc) and bounded by what a connection may hold
(one read buffer plus its unfinished frame), and every connection is closed by the server once
the idle / read timeout passes.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

import pytest

from tests.e2e.conftest import Served

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads the server's RSS from /proc"),
]

CONNECTIONS = 200
PARTIAL = b"\x0bMSH|^~\\&|HIS|H1|HUB|H1|20240612||DFT^P03|IDLE|P|2.5\r" + b"X" * 4000
READ_BYTES = 64 * 1024  # adapters.his.mllp.READ_BYTES: what one read may hold besides the frame
PER_CONNECTION = READ_BYTES + len(PARTIAL) + 16 * 1024  # + socket, task and stream objects
SLACK = 24 * 1024 * 1024  # allocator arenas, logging, the pipeline running beside the listener


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


async def hold_connections(port: int, pid: int) -> tuple[int, int, list[bytes]]:
    """Open the connections, measure RSS with all of them open, then wait for the server to close each."""
    before = rss_bytes(pid)
    streams = []
    for i in range(CONNECTIONS):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        if i % 2:
            writer.write(PARTIAL)
            await writer.drain()
        streams.append((reader, writer))
    await asyncio.sleep(0.5)  # let the server read what was sent (not a timing assertion)
    during = rss_bytes(pid)
    # The server closes every connection: read returns b"" (bounded wait, far above the timeouts).
    ends = await asyncio.gather(*(asyncio.wait_for(r.read(1024), timeout=60) for r, _ in streams))
    for _, writer in streams:
        writer.close()
    return before, during, list(ends)


def test_200_idle_connections_are_bounded_and_timed_out(tmp_path: Path) -> None:
    served = Served(
        tmp_path / "served",
        HUB_MLLP_MAX_CONNECTIONS=str(CONNECTIONS + 10),
        HUB_MLLP_IDLE_TIMEOUT="3",
        HUB_MLLP_READ_TIMEOUT="3",
        HUB_LOG_LEVEL="info",
    )
    served.start()
    try:
        assert served.proc is not None
        before, during, ends = asyncio.run(hold_connections(served.mllp_port, served.proc.pid))
    finally:
        served.stop()
    growth = during - before
    print(f"server RSS {before / 2**20:.1f} MiB -> {during / 2**20:.1f} MiB with {CONNECTIONS} idle connections"
          f" (+{growth / 2**10:.0f} KiB, {growth / CONNECTIONS / 1024:.1f} KiB per connection)")  # fmt: skip
    assert growth < CONNECTIONS * PER_CONNECTION + SLACK
    assert ends == [b""] * CONNECTIONS, "every connection was closed by the server, none answered"
    events = [json.loads(line) for line in served.log.read_text().splitlines() if line.startswith("{")]
    timed_out = [e for e in events if e.get("event") == "mllp_connection_timed_out"]
    assert len(timed_out) == CONNECTIONS
    assert sum(e["waiting_for"] == "the rest of a frame" for e in timed_out) == CONNECTIONS // 2
    stored = [e for e in events if e.get("event") == "mllp_message"]
    assert stored == [], "nothing of an unfinished frame is stored or answered"
