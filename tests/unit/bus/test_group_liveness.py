"""A consumer-group member whose process was SIGKILLed gives up its partitions at once, not after the session timeout.

The session timeout is set to a minute, so only the dead-process check can explain a fast takeover;
a member of a live process (this one) keeps its partitions.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import signal
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest

from hub.bus import EmbeddedBus, liveness
from topics.catalogue import TopicSpec

TOPIC = "live"
PARTITIONS = 4
SESSION_S = 60.0

pytestmark = pytest.mark.skipif(liveness.identity() is None, reason="needs /proc (Linux)")


async def _join_and_hang(path: Path, ready: Path) -> None:
    bus = EmbeddedBus(path, session_timeout_s=SESSION_S, heartbeat_interval_s=0.2)
    await bus.start()
    consumer = await bus.consumer([TOPIC], group="g", client_id="doomed")
    assert len(consumer.assignment()) == PARTITIONS
    ready.write_text("joined")
    for _ in range(1200):  # bounded (2 min); killed long before
        await consumer.poll(timeout_s=0.1)  # polling heartbeats: a rebalance can move partitions


def _child(path: str, ready: str) -> None:
    asyncio.run(_join_and_hang(Path(path), Path(ready)))


async def _start_child(tmp_path: Path, path: Path) -> multiprocessing.process.BaseProcess:
    ready = tmp_path / "ready"
    proc = multiprocessing.get_context("spawn").Process(target=_child, args=(str(path), str(ready)))
    proc.start()
    for _ in range(600):  # bounded: 60 s
        if ready.exists() or not proc.is_alive():
            break
        await asyncio.sleep(0.1)
    assert ready.exists(), "the child did not join its group"
    return proc


def _claims(path: Path) -> dict[str, int]:
    conn = sqlite3.connect(path)
    try:
        rows = conn.execute("SELECT member, count(*) FROM bus_group_claims WHERE grp = 'g' GROUP BY member")
        return {str(m): int(n) for m, n in rows}
    finally:
        conn.close()


@pytest.fixture
async def log_path(tmp_path: Path) -> Path:
    path = tmp_path / "bus.sqlite3"
    bus = EmbeddedBus(path)
    await bus.start()
    await bus.ensure_topics([TopicSpec(TOPIC, key="id", partitions=PARTITIONS)])
    await bus.close()
    return path


async def test_partitions_of_a_killed_member_are_taken_at_the_first_heartbeat(
    tmp_path: Path, log_path: Path
) -> None:
    proc = await _start_child(tmp_path, log_path)
    assert proc.pid is not None
    os.kill(proc.pid, signal.SIGKILL)
    await asyncio.to_thread(proc.join, 30)
    assert list(_claims(log_path).values()) == [PARTITIONS], "the dead member's claims are still recorded"

    bus = EmbeddedBus(log_path, session_timeout_s=SESSION_S, heartbeat_interval_s=0.2)
    await bus.start()
    try:
        consumer = await bus.consumer([TOPIC], group="g", client_id="restarted")
        assert len(consumer.assignment()) == PARTITIONS
        assert _claims(log_path) == {consumer.member_id: PARTITIONS}
    finally:
        await bus.close()


async def test_a_member_of_a_live_process_keeps_its_share(tmp_path: Path, log_path: Path) -> None:
    proc = await _start_child(tmp_path, log_path)
    bus = EmbeddedBus(log_path, session_timeout_s=SESSION_S, heartbeat_interval_s=0.2)
    await bus.start()
    try:
        consumer = await bus.consumer([TOPIC], group="g", client_id="second")
        for _ in range(100):  # bounded: the child releases half at its next heartbeat
            await consumer.poll(timeout_s=0.05)
            if len(consumer.assignment()) == PARTITIONS // 2:
                break
        assert len(consumer.assignment()) == PARTITIONS // 2
        assert sorted(_claims(log_path).values()) == [PARTITIONS // 2, PARTITIONS // 2]
    finally:
        await bus.close()
        proc.kill()
        await asyncio.to_thread(proc.join, 30)


def test_a_killed_child_not_yet_reaped_is_dead() -> None:
    """A zombie keeps its /proc entry until its parent waits for it; it holds nothing any more."""
    child = subprocess.Popen(["sleep", "30"])
    try:
        recorded = liveness.identity_of(child.pid)
        assert recorded is not None
        assert not liveness.certainly_dead(recorded)
        child.kill()
        for _ in range(100):  # bounded: the kernel marks it a zombie almost at once
            if liveness.certainly_dead(recorded):
                break
            time.sleep(0.01)
        assert liveness.certainly_dead(recorded)
    finally:
        child.kill()
        child.wait(timeout=10)


def test_identity_of_an_ended_process_is_certainly_dead_and_an_unknown_one_is_not() -> None:
    me = liveness.identity()
    assert me is not None
    assert not liveness.certainly_dead(me)
    boot, namespace, pid, start = me.split("/")
    assert liveness.certainly_dead(f"{boot}/{namespace}/{pid}/{int(start) + 1}")  # PID reused
    assert not liveness.certainly_dead(f"another-boot/{namespace}/{pid}/{start}")  # another machine
    assert not liveness.certainly_dead(f"{boot}/pid:[1]/{pid}/{int(start) + 1}")  # another container
    assert not liveness.certainly_dead(None)  # written by an older hub
