"""Event bus throughput: embedded (SQLite log) and Kafka (against a Tansu broker started here).

Batches of 1,000 records with 1 KB values, keyed over 1,000 ids on a 6-partition topic, as the
canonical topics are; on Kafka they also carry the three headers every hub event carries (type, id,
schema version), so both consumers decode what a real one does (the embedded rows stay without, as
they were measured before). Appends are durable (synchronous=FULL / acks=all) when they return.
Kafka consume is measured beside its peer in the same run: raw aiokafka (manual assignment of
all partitions from the start, `getmany` of up to 1,000, reading each record's key, value and
headers as any consumer must) on the same broker and topic, both CONSUME_REPEATS times alternately
(each closed after its run, the first of each pair swapped every time); median and range, ratio
hub / raw, per second of wall time and per second of the process's CPU time (the consumer's own
cost per record, less disturbed by the other jobs on the machine). Both sides start timing once
their consumer is positioned at the beginning, and both fetch with aiokafka's default settings
(the hub's consumer sets none of them). aiokafka's CRC check of each fetched batch stays on for
both (about a quarter of the raw consumer's CPU on 1 KB records): the hub does not trade integrity
checks for speed.
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from aiokafka import AIOKafkaConsumer, TopicPartition

from bench.report import load_note
from hub.bus import EmbeddedBus, KafkaBus
from hub.ports import Consumer, EventBus, OutRecord
from tests.fixtures.kafka import start_broker, stop_broker
from topics.catalogue import TopicSpec

if TYPE_CHECKING:
    from bench.report import Report

BATCH = 1_000
BATCHES = 60
CONSUME_REPEATS = 10
VALUE = os.urandom(1024)
TOPIC = TopicSpec("bench.events.v1", key="id", partitions=6)


def _headers(i: int) -> tuple[tuple[str, bytes], ...]:
    """What event_out_record puts on every event: its type, id and schema version."""
    return (
        ("event_type", b"asset.relocated"),
        ("event_id", str(uuid.UUID(int=i)).encode()),
        ("schema_version", b"1"),
    )


def _batch(n: int, *, headers: bool) -> list[OutRecord]:
    return [
        OutRecord(key=f"id-{(n * BATCH + i) % 1000}", value=VALUE, headers=_headers(n * BATCH + i))
        if headers
        else OutRecord(key=f"id-{(n * BATCH + i) % 1000}", value=VALUE)
        for i in range(BATCH)
    ]


async def _append(bus: EventBus, batches: int, *, headers: bool = False) -> float:
    records = [_batch(n, headers=headers) for n in range(batches)]
    started = time.perf_counter()
    for batch in records:
        await bus.publish(TOPIC.name, batch)
    return batches * BATCH / (time.perf_counter() - started)


class Rates(NamedTuple):
    """Records per second of wall time, and per second of this process's CPU time.

    The CPU rate is the consumer's own cost per record, which the other jobs sharing the 2 cores
    disturb far less than the wall rate (under a load of 10+, both sides mostly wait their turn).
    """

    wall: float
    cpu: float


async def _consume(consumer: Consumer, total: int) -> Rates:
    got = 0
    started, cpu = time.perf_counter(), time.process_time()
    while got < total:
        records = await consumer.poll(BATCH, timeout_s=2.0)
        if not records:
            raise RuntimeError(f"consumer stalled after {got} of {total} records")
        got += len(records)
    return Rates(got / (time.perf_counter() - started), got / (time.process_time() - cpu))


async def _raw_aiokafka(bootstrap: str, total: int) -> Rates:
    """The peer: aiokafka alone, all partitions assigned, from the beginning; records per second."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, client_id="bench-raw")
    await consumer.start()
    try:
        consumer.assign([TopicPartition(TOPIC.name, p) for p in range(TOPIC.partitions)])
        await consumer.seek_to_beginning()
        got = 0
        started, cpu = time.perf_counter(), time.process_time()
        while got < total:
            batches = await consumer.getmany(timeout_ms=2000, max_records=BATCH)
            if not batches:
                raise RuntimeError(f"raw consumer stalled after {got} of {total} records")
            for records in batches.values():
                for rec in records:  # what any consumer does with a record: look at it
                    _ = rec.key, rec.value, rec.headers
                got += len(records)
        return Rates(got / (time.perf_counter() - started), got / (time.process_time() - cpu))
    finally:
        await consumer.stop()


async def _single_publish_ms(bus: EventBus, n: int = 50) -> float:
    times = []
    for i in range(n):
        started = time.perf_counter()
        await bus.publish(TOPIC.name, [OutRecord(key=f"one-{i}", value=VALUE)])
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


async def _embedded(report: Report) -> None:
    with tempfile.TemporaryDirectory(prefix="bench-bus-") as tmp:
        bus = EmbeddedBus(Path(tmp) / "bus.sqlite3")
        await bus.start()
        try:
            await bus.ensure_topics([TOPIC])
            rate = await _append(bus, BATCHES)
            report.add("bus", "embedded append, batches of 1000 x 1 KB", rate, "events/s", aim=">= 50,000")
            consumer = await bus.consumer([TOPIC.name])
            rate = (await _consume(consumer, BATCHES * BATCH)).wall
            report.add("bus", "embedded consume (manual assignment)", rate, "events/s", aim=">= 100,000")
            group = await bus.consumer([TOPIC.name], group="bench")
            total, started = 0, time.perf_counter()
            while total < BATCHES * BATCH:
                total += len(await group.poll(BATCH, timeout_s=2.0))
                await group.commit()
            rate = total / (time.perf_counter() - started)
            report.add("bus", "embedded consume in a group, commit per poll", rate, "events/s")
            latency = await _single_publish_ms(bus)
            report.add("bus", "embedded publish of 1 record, median latency", latency, "ms", note="one fsync")
        finally:
            await bus.close()


async def _kafka(report: Report) -> None:
    proc, bootstrap = start_broker()
    bus = KafkaBus(bootstrap, client_id="bench")
    try:
        await bus.start()
        await bus.ensure_topics([TOPIC])
        batches = BATCHES // 2
        rate = await _append(bus, batches, headers=True)
        report.add("bus", "kafka produce (Tansu), batches of 1000 x 1 KB", rate, "events/s",
                   note="acks=all; 3 event headers per record")  # fmt: skip
        note = load_note()
        hub_rates: list[Rates] = []
        raw_rates: list[Rates] = []
        for n in range(CONSUME_REPEATS):
            for side in ("hub", "raw") if n % 2 == 0 else ("raw", "hub"):  # neither always goes first
                if side == "raw":
                    raw_rates.append(await _raw_aiokafka(bootstrap, batches * BATCH))
                    continue
                consumer = await bus.consumer([TOPIC.name])
                try:
                    await consumer.seek_to_beginning()  # positioned before the clock starts, as the raw side
                    hub_rates.append(await _consume(consumer, batches * BATCH))
                finally:
                    await consumer.close()  # a consumer left open would go on fetching during the next runs
        raw_wall, hub_wall = [r.wall for r in raw_rates], [r.wall for r in hub_rates]
        raw_cpu, hub_cpu = [r.cpu for r in raw_rates], [r.cpu for r in hub_rates]
        report.add("bus", "kafka consume, raw aiokafka (Tansu, manual assignment)", 0, "events/s",
                   samples=raw_wall, note=f"{batches * BATCH:,} x (1 KB + 3 headers); {note}")  # fmt: skip
        report.add("bus", "kafka consume through the hub's bus (Tansu, manual assignment)", 0, "events/s",
                   samples=hub_wall, peer=statistics.median(raw_wall), peer_label="raw aiokafka",
                   aim=">= 0.9 x raw", note=f"same broker and topic, alternating runs; {note}")  # fmt: skip
        report.add("bus", "kafka consume, raw aiokafka, per CPU-second of the consumer", 0, "events/CPU-s",
                   samples=raw_cpu, note="process CPU time of the same runs")  # fmt: skip
        report.add("bus", "kafka consume through the hub's bus, per CPU-second", 0, "events/CPU-s",
                   samples=hub_cpu, peer=statistics.median(raw_cpu), peer_label="raw aiokafka",
                   aim=">= 0.9 x raw", note="same runs: the hub's own cost per record")  # fmt: skip
        latency = await _single_publish_ms(bus)
        report.add("bus", "kafka publish of 1 record, median latency", latency, "ms", note="Tansu in memory")
    finally:
        await bus.close()
        stop_broker(proc)


async def run(report: Report) -> None:
    await _embedded(report)
    await _kafka(report)
