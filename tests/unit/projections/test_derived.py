"""Derived events: staged in the projection's transaction, published once, re-staged never."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Connection, MetaData, func, select

from hub.bus.embedded import EmbeddedBus
from hub.ports import event_out_record
from projections.runtime.db import make_engine
from projections.runtime.derived import projection_outbox
from projections.runtime.runner import ProjectionRunner
from schemas._base import Identifier, SourceSystem
from schemas.catalogue import Event
from schemas.derived import AssetIdentityConflict, IdentityConflictPayload
from schemas.envelope import EventBase, Source
from schemas.ids import event_id_for
from tests.unit.projections.factories import TOPIC, registered
from topics.catalogue import BY_NAME

DERIVED = "derived.asset.v1"
NOW = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)


def conflict_for(subject: str, *, at: datetime) -> AssetIdentityConflict:
    return AssetIdentityConflict(
        event_id=event_id_for("hub", f"conflict:{subject}", "1"),
        occurred_at=at,
        recorded_at=at,
        source=Source(
            system=SourceSystem.HUB, site="main", message_id=f"conflict:{subject}", adapter_version="hub"
        ),
        subject=subject,
        payload=IdentityConflictPayload(
            identifier=Identifier(scheme="udi", value="X"), asset_ids=[subject, "other"]
        ),
    )


class Concluding:
    """A projection that concludes one derived fact per registered asset, and one per tick."""

    name = "concluding"
    topics = (TOPIC,)
    metadata = MetaData()

    def __init__(self) -> None:
        self.ticks: list[datetime] = []

    def apply(self, conn: Connection, events: Sequence[Event]) -> Sequence[EventBase]:
        return [conflict_for(e.subject, at=e.recorded_at) for e in events]

    def tick(self, conn: Connection, now: datetime) -> Sequence[EventBase]:
        self.ticks.append(now)
        return [conflict_for("ticked", at=now)]


class FixedClock:
    def now(self) -> datetime:
        return NOW


@pytest.fixture
async def bus(tmp_path: Path) -> AsyncIterator[EmbeddedBus]:
    b = EmbeddedBus(tmp_path / "bus.sqlite3")
    await b.start()
    await b.ensure_topics([BY_NAME[TOPIC], BY_NAME[DERIVED]])
    yield b
    await b.close()


async def derived_on_bus(bus: EmbeddedBus) -> list[str]:
    reader = await bus.consumer([DERIVED], group=None)
    out: list[str] = []
    while batch := await reader.poll(timeout_s=0.2):
        out += [json.loads(r.value)["subject"] for r in batch]
    await reader.close()
    return sorted(out)


class TestDerivedEvents:
    async def test_published_once_even_when_the_stream_is_applied_again(
        self, bus: EmbeddedBus, tmp_path: Path
    ) -> None:
        """Each concluded fact reaches the derived topic once; re-published input stages nothing new."""
        engine = make_engine(f"sqlite:///{tmp_path / 'rm.db'}")
        events = [registered(f"a{i}", f"AST-{i}") for i in range(3)]
        await bus.publish(TOPIC, [event_out_record(e) for e in events])
        runner = ProjectionRunner(Concluding(), bus, engine, clock=FixedClock())
        await runner.run_until_idle()
        await bus.publish(TOPIC, [event_out_record(e) for e in events])  # a translator's crash-retry
        await runner.run_until_idle()
        await runner.close()
        assert await derived_on_bus(bus) == ["AST-0", "AST-1", "AST-2", "ticked"]
        with engine.connect() as conn:
            assert conn.execute(select(func.count()).select_from(projection_outbox)).scalar() == 4
            assert (
                conn.execute(select(func.count()).where(projection_outbox.c.published.is_(False))).scalar()
                == 0
            )
        engine.dispose()

    async def test_tick_uses_the_injected_clock(self, bus: EmbeddedBus, tmp_path: Path) -> None:
        """Time-based conclusions are drawn at the runner clock's `now`, not the wall clock."""
        engine = make_engine(f"sqlite:///{tmp_path / 'rm.db'}")
        projection = Concluding()
        runner = ProjectionRunner(projection, bus, engine, clock=FixedClock())
        await runner.run_until_idle()
        await runner.close()
        assert projection.ticks == [NOW]
        engine.dispose()

    async def test_rebuild_mode_stages_but_does_not_publish(self, bus: EmbeddedBus, tmp_path: Path) -> None:
        """With publish_derived=False (a replay), conclusions are staged in the tables and not sent again."""
        engine = make_engine(f"sqlite:///{tmp_path / 'rm.db'}")
        await bus.publish(TOPIC, [event_out_record(registered("a", "AST-9"))])
        runner = ProjectionRunner(Concluding(), bus, engine, clock=FixedClock(), publish_derived=False)
        await runner.run_until_idle()
        await runner.close()
        assert await derived_on_bus(bus) == []
        with engine.connect() as conn:
            assert conn.execute(select(func.count()).select_from(projection_outbox)).scalar() == 2
        engine.dispose()
