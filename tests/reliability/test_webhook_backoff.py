"""Webhook backoff is per partition: a refused event holds back its own partition only, order per subject holds.

Issue 9 measured 30 events that each fail 3 times taking 706 s, because one failure counter
(and one wait) was shared by every partition of the subscription.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import Engine

from hub.bus import EmbeddedBus
from hub.bus.partitioner import partition_for_key
from hub.delivery.webhooks import Backoff, SubscriptionStore, Tuning, WebhookService, subscription_key
from hub.ports import event_out_record
from projections.runtime.db import make_engine
from schemas.envelope import EventBase
from tests.reliability.receiver import Receiver, running
from tests.unit.schemas.examples import example_event
from topics.catalogue import BY_NAME

ASSETS = "canonical.asset.v1"
PARTITIONS = BY_NAME[ASSETS].partitions
FIGURES = Path(__file__).parent / "figures"


def tuning(backoff: Backoff) -> Tuning:
    return Tuning(
        reload_s=0.2, poll_s=0.2, batch=100, hold_poll_s=0.2, timeout_s=5, backoff=backoff, stop_grace_s=5
    )


def subjects_one_per_partition(count: int) -> list[str]:
    """`count` asset ids that the key partitioner puts on `count` different partitions."""
    by_partition: dict[int, str] = {}
    for i in range(10_000):
        subject = f"A-{i}"
        by_partition.setdefault(partition_for_key(subject, PARTITIONS), subject)
        if len(by_partition) == count:
            return list(by_partition.values())
    raise AssertionError("the partitioner never reached enough partitions")


def relocated(subject: str) -> EventBase:
    return example_event("asset.relocated").model_copy(update={"event_id": uuid.uuid4(), "subject": subject})


@dataclass
class Setup:
    bus: EmbeddedBus
    engine: Engine
    store: SubscriptionStore

    async def deliver(
        self,
        receiver: Receiver,
        events: list[EventBase],
        backoff: Backoff,
        done: Callable[[], bool],
        limit_s: float,
    ) -> float:
        """Subscribe, publish, run the delivery service until `done()` (bounded); the seconds it took."""
        self.store.create(
            url=receiver.url, topics=[ASSETS], types=[], description="", created_by="test",
            start_offsets={ASSETS: {str(p): 0 for p in range(PARTITIONS)}},
        )  # fmt: skip
        for event in events:
            await self.bus.publish(ASSETS, [event_out_record(event)])
        stop = asyncio.Event()
        started = time.monotonic()
        service = asyncio.create_task(WebhookService(self.store, self.bus, tuning=tuning(backoff)).run(stop))
        try:
            deadline = started + limit_s
            while not done() and time.monotonic() < deadline:
                await asyncio.sleep(0.02)
            return time.monotonic() - started
        finally:
            stop.set()
            await service


@pytest.fixture
async def setup(tmp_path: Path) -> AsyncIterator[Setup]:
    bus = EmbeddedBus(tmp_path / "bus", heartbeat_interval_s=0.2, session_timeout_s=2)
    await bus.start()
    await bus.ensure_topics([BY_NAME[ASSETS]])
    engine = make_engine(f"sqlite:///{tmp_path / 'readmodels.db'}")
    try:
        yield Setup(bus, engine, SubscriptionStore(engine, subscription_key(b"reliability")))
    finally:
        await bus.close()
        engine.dispose()


def assert_each_once_in_subject_order(receiver: Receiver, events: list[EventBase]) -> None:
    ids = receiver.ids()
    assert sorted(ids) == sorted(str(e.event_id) for e in events)  # each once: none lost, none repeated
    for subject in {e.subject for e in events}:
        sent = [str(e.event_id) for e in events if e.subject == subject]
        assert [i for i in ids if i in set(sent)] == sent


async def test_a_refused_partition_does_not_hold_back_the_others(setup: Setup) -> None:
    """While one subject's event waits out a long backoff, every other partition's events are delivered."""
    stuck, *others = subjects_one_per_partition(4)
    events = [relocated(s) for _ in range(3) for s in (stuck, *others)]
    stuck_ids = {str(e.event_id) for e in events if e.subject == stuck}
    other_ids = {str(e.event_id) for e in events if e.subject != stuck}
    with running(Receiver(refuse=lambda event_id, _attempt: event_id in stuck_ids)) as receiver:
        # A shared backoff would stop every partition for 15 to 30 s after the first refusal.
        await setup.deliver(
            receiver, events, Backoff(30.0, 60.0), lambda: other_ids <= set(receiver.ids()), limit_s=10
        )
    assert set(receiver.ids()) == other_ids
    assert sum(receiver.attempts[i] for i in stuck_ids) == 1  # its head was tried once, then it waited
    assert_each_once_in_subject_order(receiver, [e for e in events if e.subject != stuck])


async def test_events_each_refused_n_times_all_arrive_once_in_subject_order(setup: Setup) -> None:
    """Every event is refused 3 times before it is accepted: all arrive, once each, in order per subject."""
    refusals = 3
    subjects = subjects_one_per_partition(PARTITIONS)
    events = [relocated(subjects[i % PARTITIONS]) for i in range(12)]
    with running(Receiver(refuse=lambda _id, attempt: attempt <= refusals)) as receiver:
        await setup.deliver(
            receiver, events, Backoff(0.01, 0.05), lambda: len(receiver.ids()) >= len(events), limit_s=60
        )
    assert_each_once_in_subject_order(receiver, events)
    assert all(receiver.attempts[str(e.event_id)] == refusals + 1 for e in events)


@pytest.mark.soak
async def test_figure_thirty_events_refused_three_times_with_the_default_backoff(setup: Setup) -> None:
    """The issue's case with the real backoff (1 s doubling): the time scales with the busiest partition."""
    refusals, count = 3, 30
    subjects = subjects_one_per_partition(PARTITIONS)
    events = [relocated(subjects[i % PARTITIONS]) for i in range(count)]
    with running(Receiver(refuse=lambda _id, attempt: attempt <= refusals)) as receiver:
        took = await setup.deliver(
            receiver, events, Backoff(), lambda: len(receiver.ids()) >= len(events), limit_s=300
        )
    assert_each_once_in_subject_order(receiver, events)
    per_event_s = sum(Backoff().delay(n, 0.75) for n in range(1, refusals + 1))  # mean jitter
    figures = {
        "events": count,
        "refusals_each": refusals,
        "partitions": PARTITIONS,
        "seconds": round(took, 1),
        "one_shared_counter_estimate_s": round(count * per_event_s, 1),
        "per_partition_estimate_s": round(-(-count // PARTITIONS) * per_event_s, 1),
    }
    print(f"webhook backoff figures: {figures}")
    FIGURES.mkdir(exist_ok=True)
    (FIGURES / "webhook_backoff.json").write_text(json.dumps(figures, indent=2))
