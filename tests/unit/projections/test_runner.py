"""ProjectionRunner on the real embedded bus (a SQLite log in a temp dir) and both read-model databases."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import pytest
from sqlalchemy import Connection, Engine, MetaData, select
from structlog.testing import capture_logs

from hub.bus.embedded import EmbeddedBus
from hub.ports import OutRecord
from projections.assets.registry import METADATA, AssetRegistry, count_assets, get_asset
from projections.runtime.db import make_engine
from projections.runtime.runner import ProjectionRunner
from projections.runtime.tracking import TRACKING_METADATA, projection_poison, tracked_offsets
from schemas.catalogue import Event, dump_event
from tests.unit.projections.factories import TOPIC, digest, registered, status_changed
from topics.catalogue import BY_NAME

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Sequence
    from pathlib import Path

    from schemas.envelope import EventBase

GROUP = "projection.asset_registry"


@pytest.fixture
async def bus(tmp_path: Path) -> AsyncIterator[EmbeddedBus]:
    """A started embedded bus with the canonical asset topic (6 partitions)."""
    b = EmbeddedBus(tmp_path / "bus.sqlite3")
    await b.start()
    await b.ensure_topics([BY_NAME[TOPIC]])
    yield b
    await b.close()


async def publish(bus: EmbeddedBus, events: Sequence[EventBase | tuple[str, bytes]]) -> None:
    """Publish events keyed by subject; (key, bytes) pairs go out as they are."""
    out = [
        OutRecord(key=e[0], value=e[1])
        if isinstance(e, tuple)
        else OutRecord(key=e.subject, value=dump_event(e))
        for e in events
    ]
    await bus.publish(TOPIC, out)


def fleet(n: int, *, prefix: str = "r") -> list[EventBase]:
    return [registered(f"{prefix}{i}", f"A{i}") for i in range(n)]


async def run_once(bus: EmbeddedBus, engine: Engine, projection: object | None = None) -> int:
    runner = ProjectionRunner(projection or AssetRegistry(), bus, engine)  # type: ignore[arg-type]
    try:
        return await runner.run_until_idle()
    finally:
        await runner.close()


def assets_in(engine: Engine) -> int:
    with engine.connect() as conn:
        return count_assets(conn)


class _Crashing:
    name = "asset_registry"
    topics = (TOPIC,)
    metadata: MetaData = METADATA

    def apply(self, conn: Connection, events: Sequence[Event]) -> None:
        AssetRegistry().apply(conn, events)
        raise RuntimeError("simulated crash after the read model was written")


class TestRunUntilIdle:
    async def test_applies_everything_published_and_tracks_end_offsets(
        self, bus: EmbeddedBus, engine: Engine
    ) -> None:
        """Every published event lands in the registry; tracking holds each partition's last offset."""
        await publish(bus, fleet(20))
        assert await run_once(bus, engine) == 20
        assert assets_in(engine) == 20
        ends = await bus.end_offsets(TOPIC)
        with engine.connect() as conn:
            tracked = tracked_offsets(conn, "asset_registry")
        assert tracked == {(TOPIC, p): end - 1 for p, end in ends.items() if end > 0}

    async def test_commits_the_group_offset_after_the_database(
        self, bus: EmbeddedBus, engine: Engine
    ) -> None:
        """After a batch, the bus's group commit points past the applied records (advisory)."""
        await publish(bus, fleet(8))
        await run_once(bus, engine)
        probe = await bus.consumer([TOPIC], group=GROUP)
        ends = await bus.end_offsets(TOPIC)
        committed = {p: await probe.committed((TOPIC, p)) for p, end in ends.items() if end > 0}
        await probe.close()
        assert committed == {p: end for p, end in ends.items() if end > 0}

    async def test_small_batches_give_the_same_tables(
        self, bus: EmbeddedBus, engine: Engine, db_url: str
    ) -> None:
        """batch_size only changes transaction sizes, not the result."""
        await publish(bus, [*fleet(15), *(status_changed(f"s{i}", f"A{i}", "idle") for i in range(0, 15, 2))])
        runner = ProjectionRunner(AssetRegistry(), bus, engine, batch_size=3)
        assert await runner.run_until_idle() == 23
        await runner.close()
        small = digest(engine, METADATA, exclude=())
        with engine.begin() as conn:
            for table in [*METADATA.sorted_tables, *TRACKING_METADATA.sorted_tables]:
                conn.execute(table.delete())
        assert await run_once(bus, engine) == 23
        assert digest(engine, METADATA) == small


class TestRestart:
    async def test_resumes_from_the_database_when_the_bus_commit_lags(
        self, bus: EmbeddedBus, engine: Engine
    ) -> None:
        """A crash between DB commit and bus commit: the restarted runner seeks past what the DB holds."""
        await publish(bus, fleet(6))
        await run_once(bus, engine)
        rewind = await bus.consumer([TOPIC], group=GROUP)  # as if no bus commit had ever happened
        await rewind.commit(dict.fromkeys(rewind.assignment(), 0))
        await rewind.close()
        await publish(bus, fleet(3, prefix="late"))

        with capture_logs() as logs:
            assert await run_once(bus, engine) == 3
        batches = [e for e in logs if e["event"] == "projection_batch_applied"]
        assert sum(e["redelivered"] for e in batches) == 0  # sought, not filtered
        assert assets_in(engine) == 6

    async def test_an_empty_database_rebuilds_from_the_start_whatever_the_bus_says(
        self, bus: EmbeddedBus, engine: Engine, tmp_path: Path
    ) -> None:
        """The database is the truth: a fresh read-model database re-reads the log from offset 0."""
        await publish(bus, fleet(7))
        await run_once(bus, engine)
        fresh = make_engine(f"sqlite:///{tmp_path / 'rebuilt.db'}")
        assert await run_once(bus, fresh) == 7
        assert digest(fresh, METADATA, TRACKING_METADATA) == digest(engine, METADATA, TRACKING_METADATA)
        fresh.dispose()

    async def test_a_crash_mid_batch_then_restart_equals_an_uninterrupted_run(
        self, bus: EmbeddedBus, engine: Engine, tmp_path: Path
    ) -> None:
        """The crashed batch is rolled back and re-applied: tables equal those of a run with no crash."""
        await publish(bus, fleet(5))
        await run_once(bus, engine)
        await publish(bus, [status_changed("s1", "A1", "under_repair"), *fleet(2, prefix="more")])
        with pytest.raises(RuntimeError, match="simulated crash"):
            await run_once(bus, engine, _Crashing())
        assert await run_once(bus, engine) == 3

        clean = make_engine(f"sqlite:///{tmp_path / 'clean.db'}")
        await run_once(bus, clean)
        assert digest(engine, METADATA, TRACKING_METADATA) == digest(clean, METADATA, TRACKING_METADATA)
        clean.dispose()


@pytest.mark.wire_unchecked  # publishes a poison record on purpose
class TestPoison:
    async def test_a_poison_record_is_recorded_and_the_partition_flows_on(
        self, bus: EmbeddedBus, engine: Engine
    ) -> None:
        """Bytes that are not an event, between two good events on one partition, do not stop the second."""
        await publish(bus, [registered("r1", "A1"), ("A1", b"{not json"), status_changed("s1", "A1", "idle")])
        runner = ProjectionRunner(AssetRegistry(), bus, engine)
        assert await runner.run_until_idle() == 2
        assert await runner.lag() == 0
        await runner.close()
        with engine.connect() as conn:
            poison = conn.execute(select(projection_poison)).mappings().all()
            assert get_asset(conn, "A1")["status"] == "idle"  # type: ignore[index]
        assert [(p["offset"], p["error"].startswith("invalid JSON")) for p in poison] == [(1, True)]


class TestLagAndForever:
    async def test_lag_before_start_comes_from_the_database(self, bus: EmbeddedBus, engine: Engine) -> None:
        """Before joining the group, lag is end offsets minus what the database has applied."""
        await publish(bus, fleet(4))
        await run_once(bus, engine)
        await publish(bus, fleet(3, prefix="new"))
        runner = ProjectionRunner(AssetRegistry(), bus, engine)
        assert await runner.lag() == 3
        await runner.run_until_idle()
        assert await runner.lag() == 0
        await runner.close()

    async def test_run_forever_applies_new_events_until_stopped(
        self, bus: EmbeddedBus, engine: Engine
    ) -> None:
        """run_forever keeps applying what arrives and returns once `stop` is set."""
        runner = ProjectionRunner(AssetRegistry(), bus, engine)
        stop = asyncio.Event()
        task = asyncio.create_task(runner.run_forever(stop))
        await publish(bus, fleet(5))
        for _ in range(100):
            if assets_in(engine) == 5:
                break
            await asyncio.sleep(0.05)
        stop.set()
        await asyncio.wait_for(task, timeout=5)
        await runner.close()
        assert assets_in(engine) == 5
