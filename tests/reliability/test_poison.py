"""A poison event in a projection (valid on the wire, but the projection fails on it) is retried, then
dead-lettered to `projection_poison` with its position and error, and its partition flows on.

The runner here is supervised as `hub serve` supervises it: after a failure it is reset and run
again, resuming from the database.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import pytest
from sqlalchemy import Connection, Engine, MetaData, select

from hub.bus.embedded import EmbeddedBus
from hub.ports import OutRecord
from projections.assets.registry import METADATA, AssetRegistry, get_asset
from projections.runtime.db import make_engine
from projections.runtime.runner import POISON_AFTER, ProjectionRunner
from projections.runtime.tracking import projection_poison
from schemas.catalogue import Event, dump_event
from tests.unit.projections.factories import TOPIC, eid, registered, status_changed
from topics.catalogue import BY_NAME

POISON = str(eid("poison"))


class FailsOnOneEvent:
    """The asset registry with a bug that only one event triggers."""

    name = "asset_registry"
    topics = (TOPIC,)
    metadata: MetaData = METADATA

    def __init__(self) -> None:
        self.attempts = 0

    def apply(self, conn: Connection, events: Sequence[Event]) -> None:
        if any(str(e.event_id) == POISON for e in events):
            self.attempts += 1
            raise ValueError("a projection bug this one event triggers")
        AssetRegistry().apply(conn, events)


@pytest.fixture
async def bus(tmp_path: Path) -> AsyncIterator[EmbeddedBus]:
    b = EmbeddedBus(tmp_path / "bus.sqlite3")
    await b.start()
    await b.ensure_topics([BY_NAME[TOPIC]])
    yield b
    await b.close()


@pytest.fixture
def engine(db_url: str) -> Engine:
    return make_engine(db_url)


async def test_retried_then_dead_lettered_and_the_partition_flows_on(
    bus: EmbeddedBus, engine: Engine
) -> None:
    events = [
        registered("r1", "A1"),
        status_changed("poison", "A1", "under_repair"),
        status_changed("s2", "A1", "idle"),
    ]
    await bus.publish(
        TOPIC,
        [
            OutRecord(key=e.subject, value=dump_event(e), headers=(("event_id", str(e.event_id).encode()),))
            for e in events
        ],
    )
    projection = FailsOnOneEvent()
    runner = ProjectionRunner(projection, bus, engine)  # type: ignore[arg-type]
    failures = 0
    try:
        for _ in range(POISON_AFTER + 2):  # bounded: what the supervisor does, without its pauses
            try:
                await runner.run_until_idle()
                break
            except ValueError:
                failures += 1
                await runner.close()  # the supervisor's reset: resume from the database
    finally:
        await runner.close()
    assert failures == POISON_AFTER - 1  # retried; the last attempt dead-letters instead of failing
    assert projection.attempts >= POISON_AFTER
    with engine.connect() as conn:
        poison = conn.execute(select(projection_poison)).mappings().all()
        asset = get_asset(conn, "A1")
    assert asset is not None
    assert asset["status"] == "idle"  # the event after the poison one, on the same partition, applied
    [row] = poison
    assert (row["topic"], row["offset"], row["event_id"]) == (TOPIC, 1, POISON)
    assert row["error"].startswith("ValueError: a projection bug this one event triggers")
