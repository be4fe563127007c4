"""A `hub serve` node named by HUB_NODE_ID rejoins its Kafka groups at once after a SIGKILL.

Without a static member id, the dead process's member keeps its partitions until its session
times out; a restarted node waits that long before processing resumes. The session timeout here
is 20 s, so getting the partitions back sooner is only explained by static membership. (On the
Tansu test broker every group join itself takes 5 to 17 s: TEST-BROKER.md.)
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hub.bus.kafka import KafkaBus
from hub.ports import EventBus
from tests.fixtures.kafka import unique_topic
from topics.catalogue import TopicSpec

# soak: two group joins on the test broker take 20 s or more (it waits about half the session).
pytestmark = [pytest.mark.kafka]

SESSION_MS = 20_000
MEMBER = """
import asyncio, sys
from hub.bus.kafka import KafkaBus

async def main(boot: str, topic: str, node: str) -> None:
    bus = KafkaBus(boot, session_timeout_ms={session}, heartbeat_interval_ms=1_000, instance_id=node or None)
    await bus.start()
    consumer = await bus.consumer([topic], group="projection.static-test")
    print("assigned", len(consumer.assignment()), flush=True)
    await asyncio.sleep(600)

asyncio.run(main(*sys.argv[1:4]))
""".replace("{session}", str(SESSION_MS))
REPO = Path(__file__).resolve().parents[2]


def _member(boot: str, topic: str, node: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", MEMBER, boot, topic, node],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
    )


def _assigned(member: subprocess.Popen[str]) -> tuple[int, float]:
    started = time.monotonic()
    assert member.stdout is not None
    for _ in range(200):  # bounded: the bus logs a few lines before the assignment
        line = member.stdout.readline()
        if line.startswith("assigned") or not line:
            break
    assert line.startswith("assigned"), f"the member ended without an assignment (last line {line!r})"
    return int(line.split()[1]), time.monotonic() - started


@pytest.mark.soak
async def test_a_node_killed_and_restarted_takes_its_partitions_back_before_its_session_ends(
    kafka_bootstrap: str,
) -> None:
    topic = unique_topic("static")
    bus: EventBus = KafkaBus(kafka_bootstrap)
    await bus.start()
    try:
        await bus.ensure_topics([TopicSpec(name=topic, key="subject", partitions=4)])
    finally:
        await bus.close()
    first = _member(kafka_bootstrap, topic, "node-a")
    try:
        assert _assigned(first)[0] == 4
    finally:
        first.send_signal(signal.SIGKILL)  # no LeaveGroup: the broker still counts the member
        first.wait()
    again = _member(kafka_bootstrap, topic, "node-a")
    try:
        partitions, took = await asyncio.to_thread(_assigned, again)
        assert partitions == 4
        print(
            f"static member rejoined {took:.1f} s after the kill (session timeout {SESSION_MS / 1000:.0f} s)"
        )
        assert took < SESSION_MS / 1000, f"rejoined after {took:.1f} s: waited for the session timeout"
    finally:
        again.kill()
        again.wait()


class _Open:
    closed = False


class _Closed:
    closed = True


def test_two_consumers_of_one_group_in_one_process_get_distinct_static_ids() -> None:
    """A second open member of a group in this process must not fence the first (same id)."""
    bus = KafkaBus("127.0.0.1:1", instance_id="node-a")
    assert bus._static_id("projection.x") == "node-a.projection.x"
    bus._static[_Open()] = "node-a.projection.x"  # type: ignore[index]
    assert bus._static_id("projection.x") == "node-a.projection.x#2"
    assert bus._static_id("projection.y") == "node-a.projection.y"
    closed = KafkaBus("127.0.0.1:1", instance_id="node-a")
    closed._static[_Closed()] = "node-a.projection.x"  # type: ignore[index]
    assert closed._static_id("projection.x") == "node-a.projection.x"  # a closed member's id is free again
    assert KafkaBus("127.0.0.1:1")._static_id("projection.x") is None  # no HUB_NODE_ID: dynamic members
