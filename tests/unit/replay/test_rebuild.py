"""Rebuild and check on the embedded bus, on SQLite and PostgreSQL: equal to live, atomic, resumable."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import (
    Column,
    Connection,
    Engine,
    MetaData,
    String,
    Table,
    event,
    inspect,
    select,
    text,
    update,
)

from hub.bus.embedded import EmbeddedBus
from projections.assets.registry import AssetRegistry, assets
from projections.runtime.db import make_engine, write_transaction
from projections.runtime.derived import projection_outbox
from projections.runtime.runner import ProjectionRunner
from projections.runtime.tracking import ensure_tables, tracked_offsets
from replay.compare import NO_COLUMN, ROW_MISSING
from replay.errors import UnknownProjection
from replay.rebuild import check_projection, find_projection, rebuild
from schemas.catalogue import Event
from schemas.envelope import EventBase
from tests.unit.projections.factories import registered, status_changed
from tests.unit.replay.streams import ASSET_TOPIC, Concluding, publish, random_stream, table_digest

NOW = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)


class FixedClock:
    def now(self) -> datetime:
        return NOW


async def run_live(
    bus: EmbeddedBus, live: Engine, projection: object | None = None, batch_size: int = 50
) -> int:
    runner = ProjectionRunner(
        projection or AssetRegistry(),  # type: ignore[arg-type]
        bus,
        live,
        batch_size=batch_size,
        clock=FixedClock(),
    )
    try:
        return await runner.run_until_idle()
    finally:
        await runner.close()


def scratch_leftovers(live: Engine) -> list[str]:
    """Rebuild files beside a SQLite database, or rebuild schemas in a PostgreSQL one."""
    if live.dialect.name == "sqlite":
        folder = Path(str(live.url.database)).parent
        return sorted(p.name for p in folder.iterdir() if ".rebuild-" in p.name)
    with live.connect() as conn:
        names = conn.execute(text("SELECT nspname FROM pg_namespace WHERE nspname LIKE 'rebuild_%'"))
        return sorted(names.scalars())


class TestEqualToLive:
    @pytest.mark.parametrize("seed", [1, 2])
    async def test_a_rebuild_of_a_random_stream_equals_the_live_tables(
        self, bus: EmbeddedBus, live: Engine, seed: int
    ) -> None:
        """After a random stream applied live in small batches, the rebuilt tables hash the same, table by table."""
        await publish(bus, random_stream(seed, 150))
        await run_live(bus, live, batch_size=7 * seed)
        report = await rebuild(bus, live, AssetRegistry(), check=True)
        assert report.comparison is not None
        assert report.comparison.equal, report.comparison.difference
        assert all(t.live_rows == t.rebuilt_rows for t in report.comparison.tables)
        assert report.swapped
        after = await check_projection(bus, live, AssetRegistry())
        assert after.comparison is not None
        assert after.comparison.equal

    async def test_check_names_the_first_differing_value(self, bus: EmbeddedBus, live: Engine) -> None:
        """A live value changed behind the projection's back is reported with table, key, column and both values."""
        await publish(bus, [registered("r1", "A1"), registered("r2", "A2")])
        await run_live(bus, live)
        with live.begin() as conn:
            conn.execute(update(assets).where(assets.c.asset_id == "A2").values(model="tampered"))
        report = await check_projection(bus, live, AssetRegistry())
        assert report.comparison is not None
        difference = report.comparison.difference
        assert difference is not None
        assert (difference.table, difference.key, difference.column) == (
            "asset_registry_assets",
            {"asset_id": "A2"},
            "model",
        )
        assert (difference.live, difference.rebuilt) == ("tampered", "SV300")
        assert not report.swapped
        with live.connect() as conn:  # check never writes live tables
            assert (
                conn.execute(select(assets.c.model).where(assets.c.asset_id == "A2")).scalar_one()
                == "tampered"
            )

    async def test_check_reports_a_row_missing_from_live(self, bus: EmbeddedBus, live: Engine) -> None:
        """A deleted live row is reported as missing from the live side, with its key."""
        await publish(bus, [registered("r1", "A1"), registered("r2", "A2")])
        await run_live(bus, live)
        with live.begin() as conn:
            conn.execute(assets.delete().where(assets.c.asset_id == "A1"))
        report = await check_projection(bus, live, AssetRegistry())
        assert report.comparison is not None
        difference = report.comparison.difference
        assert difference is not None
        assert (difference.table, difference.key, difference.column) == (
            "asset_registry_assets",
            {"asset_id": "A1"},
            ROW_MISSING,
        )
        assert difference.live is None
        assert difference.rebuilt is not None

    async def test_a_rebuild_repairs_a_tampered_read_model(self, bus: EmbeddedBus, live: Engine) -> None:
        """rebuild --check reports the difference, swaps the log's truth in, and a later check is equal."""
        await publish(bus, random_stream(7, 60))
        await run_live(bus, live)
        with live.begin() as conn:
            conn.execute(update(assets).values(status="tampered"))
        report = await rebuild(bus, live, AssetRegistry(), check=True)
        assert report.comparison is not None
        assert not report.comparison.equal
        assert report.swapped
        again = await check_projection(bus, live, AssetRegistry())
        assert again.comparison is not None
        assert again.comparison.equal


class TestResume:
    async def test_the_live_runner_continues_exactly_where_the_rebuild_ended(
        self, bus: EmbeddedBus, live: Engine
    ) -> None:
        """The rebuild read past the live position; after the swap the runner applies only what came after."""
        await publish(bus, random_stream(11, 40))
        await run_live(bus, live)
        await publish(bus, [registered(f"mid{i}", f"M{i}") for i in range(9)])  # live has not seen these
        report = await rebuild(bus, live, AssetRegistry())
        assert report.swapped
        ends = await bus.end_offsets(ASSET_TOPIC)
        assert report.positions == {(ASSET_TOPIC, p): end - 1 for p, end in ends.items() if end > 0}
        await publish(bus, [status_changed(f"late{i}", f"M{i}", "idle") for i in range(4)])
        assert await run_live(bus, live) == 4  # neither the 9 again nor a gap
        final = await check_projection(bus, live, AssetRegistry())
        assert final.comparison is not None
        assert final.comparison.equal

    async def test_a_rebuild_catches_up_with_a_runner_applying_meanwhile(
        self, bus: EmbeddedBus, live: Engine
    ) -> None:
        """While events keep arriving and the live runner keeps applying, the swap happens without a gap."""
        await publish(bus, random_stream(5, 120))
        runner = ProjectionRunner(AssetRegistry(), bus, live, batch_size=5, clock=FixedClock())
        await runner.start()  # its tables exist before the rebuild looks (two creators would race)
        stop = asyncio.Event()
        serving = asyncio.create_task(runner.run_forever(stop))

        async def keep_publishing() -> None:
            for i in range(30):
                await publish(bus, [registered(f"busy{i}", f"B{i}")])
                await asyncio.sleep(0.01)

        feeding = asyncio.create_task(keep_publishing())
        report = await rebuild(bus, live, AssetRegistry(), batch_size=10)
        await feeding
        await asyncio.sleep(0.5)
        stop.set()
        await serving
        await runner.close()
        assert report.swapped
        await run_live(bus, live)
        final = await check_projection(bus, live, AssetRegistry())
        assert final.comparison is not None
        assert final.comparison.equal, final.comparison.difference
        with live.connect() as conn:
            assert (
                conn.execute(select(assets.c.asset_id).where(assets.c.asset_id == "B29")).scalar_one()
                == "B29"
            )


class TestAtomicSwap:
    async def test_a_reader_in_the_middle_of_the_swap_still_sees_the_old_rows(
        self, bus: EmbeddedBus, live: Engine
    ) -> None:
        """Read from another connection right after the swap deleted the live rows: all old rows, not none."""
        await publish(bus, [registered(f"r{i}", f"A{i:03d}") for i in range(300)])
        await run_live(bus, live, batch_size=100)
        with live.begin() as conn:
            conn.execute(update(assets).values(model="old"))
        old = table_digest(live, assets)
        reader = make_engine(live.url.render_as_string(hide_password=False))
        during: list[str] = []

        def after_execute(conn: Connection, cursor: object, statement: str, *args: object) -> None:
            # The swap's DELETE of the live rows has run, its transaction is still open.
            if statement.startswith("DELETE FROM") and "asset_registry_assets" in statement and not during:
                during.append(table_digest(reader, assets))

        event.listen(Engine, "after_cursor_execute", after_execute)
        try:
            await rebuild(bus, live, AssetRegistry())
        finally:
            event.remove(Engine, "after_cursor_execute", after_execute)
            reader.dispose()
        new = table_digest(live, assets)
        assert during == [old]
        assert new != old

    async def test_readers_polling_throughout_a_rebuild_see_only_the_old_or_the_new_table(
        self, bus: EmbeddedBus, live: Engine
    ) -> None:
        """A thread reading the live table in a loop during a whole rebuild never sees a third state."""
        await publish(bus, [registered(f"r{i}", f"A{i:03d}") for i in range(300)])
        await run_live(bus, live, batch_size=100)
        with live.begin() as conn:
            conn.execute(update(assets).values(model="old"))
        old = table_digest(live, assets)
        seen: set[str] = set()
        done = threading.Event()

        def poll() -> None:
            reader = make_engine(live.url.render_as_string(hide_password=False))
            while not done.is_set():
                seen.add(table_digest(reader, assets))
            reader.dispose()

        thread = threading.Thread(target=poll)
        thread.start()
        try:
            await rebuild(bus, live, AssetRegistry(), batch_size=50)
        finally:
            done.set()
            await asyncio.to_thread(thread.join)
        assert seen <= {old, table_digest(live, assets)}


class TestDerivedEvents:
    async def test_published_facts_stay_published_and_new_ones_are_left_for_the_runner(
        self, bus: EmbeddedBus, live: Engine
    ) -> None:
        """Derived events the live runner published keep published=True; ones past the live position are published once."""
        await publish(bus, [registered("r1", "A1"), registered("r2", "A2")])
        assert await run_live(bus, live, Concluding()) == 2
        await publish(bus, [registered("r3", "A3")])
        report = await rebuild(bus, live, Concluding(), clock=FixedClock())
        assert report.swapped
        with live.connect() as conn:
            rows = conn.execute(select(projection_outbox.c.key, projection_outbox.c.published)).all()
        assert dict(rows) == {"A1": True, "A2": True, "A3": False, "ticked": True}
        runner = ProjectionRunner(Concluding(), bus, live, clock=FixedClock())
        await runner.publish_staged()
        await runner.close()
        on_bus = [r.key for r in await _read_all(bus, "derived.asset.v1")]
        assert sorted(on_bus) == ["A1", "A2", "A3", "ticked"]  # each once

    async def test_a_conclusion_ticked_at_another_time_is_equal_and_keeps_the_published_bytes(
        self, bus: EmbeddedBus, live: Engine
    ) -> None:
        """A rebuild ticking later concludes the same fact with another recorded_at: check ignores that
        field only, and the swap keeps the bytes the live runner published."""
        await publish(bus, [registered("r1", "A1")])
        await run_live(bus, live, Concluding())
        published = _outbox_values(live)["ticked"]
        later = LaterClock()
        report = await rebuild(bus, live, Concluding(), check=True, clock=later)
        assert report.comparison is not None
        assert report.comparison.equal, report.comparison.difference
        assert _outbox_values(live)["ticked"] == published
        assert datetime.fromisoformat(json.loads(published)["recorded_at"]) == NOW


class LaterClock:
    def now(self) -> datetime:
        return NOW + timedelta(hours=1)


def _outbox_values(engine: Engine) -> dict[str, bytes]:
    with engine.connect() as conn:
        return {
            k: bytes(v) for k, v in conn.execute(select(projection_outbox.c.key, projection_outbox.c.value))
        }


class TestSchemaChange:
    async def test_a_rebuild_recreates_a_live_table_whose_columns_changed(
        self, bus: EmbeddedBus, live: Engine
    ) -> None:
        """A live table created by an older definition is reported by check, then recreated by the swap."""
        older = MetaData()
        Table(
            "concluding_seen",
            older,
            Column("subject", String(64), primary_key=True),
            Column("gone", String(8)),
        )
        with write_transaction(live) as conn:
            older.create_all(conn)
        await publish(bus, [registered("r1", "A1")])
        await run_live(bus, live, Concluding())
        report = await check_projection(bus, live, Concluding(), clock=FixedClock())
        assert report.comparison is not None
        difference = report.comparison.difference
        assert difference is not None
        assert (difference.table, difference.column, difference.rebuilt) == (
            "concluding_seen",
            "gone",
            NO_COLUMN,
        )
        await rebuild(bus, live, Concluding(), clock=FixedClock())
        with live.connect() as conn:
            columns = {c["name"] for c in inspect(conn).get_columns("concluding_seen")}
        assert columns == {"subject"}
        again = await check_projection(bus, live, Concluding(), clock=FixedClock())
        assert again.comparison is not None
        assert again.comparison.equal


class _FailsMidway:
    """The asset registry, but its third batch raises (a bug in a new projection version)."""

    def __init__(self) -> None:
        self.inner = AssetRegistry()
        self.name, self.topics, self.metadata = self.inner.name, self.inner.topics, self.inner.metadata
        self.batches = 0

    def apply(self, conn: Connection, events: Sequence[Event]) -> Sequence[EventBase] | None:
        self.batches += 1
        if self.batches == 3:
            raise RuntimeError("simulated bug in a projection")
        return self.inner.apply(conn, events)


class TestScratch:
    async def test_no_scratch_is_left_behind_after_a_rebuild(self, bus: EmbeddedBus, live: Engine) -> None:
        """The scratch file (SQLite) or schema (PostgreSQL) is removed once swapped."""
        await publish(bus, random_stream(3, 30))
        await rebuild(bus, live, AssetRegistry())
        assert scratch_leftovers(live) == []

    async def test_a_failing_rebuild_leaves_live_untouched_and_no_scratch(
        self, bus: EmbeddedBus, live: Engine
    ) -> None:
        """A projection raising mid-rebuild: the error propagates, live tables and offsets are as they were."""
        await publish(bus, random_stream(4, 80))
        await run_live(bus, live)
        before = table_digest(live, assets)
        with live.connect() as conn:
            positions = tracked_offsets(conn, "asset_registry")
        with pytest.raises(RuntimeError, match="simulated bug"):
            await rebuild(bus, live, _FailsMidway(), batch_size=10)
        assert table_digest(live, assets) == before
        with live.connect() as conn:
            assert tracked_offsets(conn, "asset_registry") == positions
        assert scratch_leftovers(live) == []

    async def test_an_unknown_projection_name_lists_the_known_ones(self) -> None:
        """find_projection refuses a name no projection has, naming those that exist."""
        with pytest.raises(UnknownProjection, match="asset_registry"):
            find_projection([AssetRegistry()], "nope")

    async def test_check_on_an_empty_log_and_empty_read_model_is_equal(
        self, bus: EmbeddedBus, live: Engine
    ) -> None:
        """Nothing applied and nothing to apply: the check compares empty tables and says equal."""
        ensure_tables(live, AssetRegistry())
        report = await check_projection(bus, live, AssetRegistry())
        assert report.comparison is not None
        assert report.comparison.equal
        assert report.records == 0


async def _read_all(bus: EmbeddedBus, topic: str) -> list:  # type: ignore[type-arg]
    reader = await bus.consumer([topic], group=None)
    out = []
    while batch := await reader.poll(timeout_s=0.2):
        out += batch
    await reader.close()
    return out
