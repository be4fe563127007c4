"""One runner for several projections: one poll, one decode per record, one transaction per batch,
each projection still exactly once and poisoned on its own."""

from __future__ import annotations

import sqlite3
from typing import TYPE_CHECKING

import pytest
from sqlalchemy import Column, Connection, Engine, MetaData, String, Table, event, func, insert, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from hub.bootstrap import build_hub
from hub.bus.embedded import EmbeddedBus
from hub.pipeline import drain
from hub.ports import OutRecord
from hub.settings import Settings
from projections.runtime import db as db_module
from projections.runtime import decode as decode_module
from projections.runtime import tracking as tracking_module
from projections.runtime.db import make_engine, write_transaction
from projections.runtime.derived import pending, pending_query
from projections.runtime.runner import POISON_AFTER, ProjectionRunner, group_name
from projections.runtime.tracking import projection_poison, tracked_offsets
from schemas.catalogue import Event, dump_event
from tests.unit.projections.factories import TOPIC, registered
from topics.catalogue import BY_NAME

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Sequence
    from pathlib import Path

    from hub.ports import BusRecord, Consumer


class Recorder:
    """A projection that records the ids it applied in `<name>_seen`; optionally fails on one id."""

    topics = (TOPIC,)

    def __init__(self, name: str, *, fails_on: str | None = None) -> None:
        self.name = name
        self.fails_on = fails_on
        self.metadata = MetaData()
        self.seen = Table(f"{name}_seen", self.metadata, Column("event_id", String(36), primary_key=True))

    def apply(self, conn: Connection, events: Sequence[Event]) -> None:
        if self.fails_on is not None and any(str(e.event_id) == self.fails_on for e in events):
            raise ValueError("a bug this one event triggers")
        conn.execute(insert(self.seen), [{"event_id": str(e.event_id)} for e in events])

    def ids(self, engine: Engine) -> set[str]:
        with engine.connect() as conn:
            return set(conn.execute(select(self.seen.c.event_id)).scalars())


@pytest.fixture
async def bus(tmp_path: Path) -> AsyncIterator[EmbeddedBus]:
    b = EmbeddedBus(tmp_path / "bus.sqlite3")
    await b.start()
    await b.ensure_topics([BY_NAME[TOPIC]])
    yield b
    await b.close()


@pytest.fixture
def engine(tmp_path: Path) -> Engine:
    return make_engine(f"sqlite:///{tmp_path / 'rm.db'}")


async def publish_fleet(bus: EmbeddedBus, n: int) -> list[str]:
    events = [registered(f"r{i}", f"A{i}") for i in range(n)]
    await bus.publish(
        TOPIC,
        [
            OutRecord(key=e.subject, value=dump_event(e), headers=(("event_id", str(e.event_id).encode()),))
            for e in events
        ],
    )
    return [str(e.event_id) for e in events]


def test_the_group_names_the_set() -> None:
    assert group_name([Recorder("a")]) == "projection.a"
    assert group_name([Recorder("b"), Recorder("a")]) == "projections.a.b"
    with pytest.raises(ValueError, match="distinct"):
        ProjectionRunner([Recorder("a"), Recorder("a")], None, None)  # type: ignore[arg-type]


async def test_each_record_is_decoded_once_for_every_projection_on_its_topic(
    bus: EmbeddedBus, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = await publish_fleet(bus, 12)
    decoded: list[int] = []
    real = decode_module.decode

    def counting(record: BusRecord) -> object:
        decoded.append(record.offset)
        return real(record)

    monkeypatch.setattr(decode_module, "decode", counting)
    monkeypatch.setattr(tracking_module, "decode", counting)
    first, second, third = Recorder("first"), Recorder("second"), Recorder("third")
    runner = ProjectionRunner([first, second, third], bus, engine)
    try:
        assert await runner.run_until_idle() == 3 * 12
    finally:
        await runner.close()
    assert len(decoded) == 12
    assert first.ids(engine) == second.ids(engine) == third.ids(engine) == set(ids)


async def test_a_batch_is_one_transaction_across_projections(bus: EmbeddedBus, engine: Engine) -> None:
    await publish_fleet(bus, 10)
    projections = [Recorder("first"), Recorder("second")]
    runner = ProjectionRunner(projections, bus, engine)
    commits: list[int] = []
    try:
        await runner.start()  # creating the tables commits too; count the batch alone
        event.listen(engine, "commit", lambda _conn: commits.append(1))
        assert await runner.run_until_idle() == 20
    finally:
        await runner.close()
    assert len(commits) == 1
    with engine.connect() as conn:
        # Each projection's tracking was written in that one commit: both at the end of the log.
        first, second = tracked_offsets(conn, "first"), tracked_offsets(conn, "second")
    assert first == second
    assert sum(offset + 1 for offset in first.values()) == 10


async def test_a_projection_failing_on_one_event_does_not_hold_back_the_others(
    bus: EmbeddedBus, engine: Engine
) -> None:
    ids = await publish_fleet(bus, 8)
    healthy, buggy = Recorder("healthy"), Recorder("buggy", fails_on=ids[3])
    runner = ProjectionRunner([healthy, buggy], bus, engine)
    failures = 0
    try:
        for _ in range(POISON_AFTER + 2):  # bounded: the supervisor's restarts, without their pauses
            try:
                await runner.run_until_idle()
                break
            except ValueError:
                failures += 1
                # Already after the first failure, the healthy projection has everything.
                assert healthy.ids(engine) == set(ids)
                await runner.close()
    finally:
        await runner.close()
    assert failures == POISON_AFTER - 1
    assert healthy.ids(engine) == set(ids)
    assert buggy.ids(engine) == set(ids) - {ids[3]}
    with engine.connect() as conn:
        poison = conn.execute(select(projection_poison)).mappings().all()
        assert tracked_offsets(conn, "buggy") == tracked_offsets(conn, "healthy")
    assert [(row["projection"], row["event_id"]) for row in poison] == [("buggy", ids[3])]


async def test_a_restart_resumes_each_projection_from_its_own_tracking(
    bus: EmbeddedBus, engine: Engine
) -> None:
    """A projection added later (or behind) is fed from its own position; the others skip, exactly once."""
    ids = await publish_fleet(bus, 6)
    old = Recorder("old")
    alone = ProjectionRunner(old, bus, engine)
    try:
        await alone.run_until_idle()
    finally:
        await alone.close()
    later = await publish_fleet_more(bus)
    new = Recorder("new")
    runner = ProjectionRunner([old, new], bus, engine)
    try:
        assert await runner.run_until_idle() == len(later) + len(ids) + len(later)
    finally:
        await runner.close()
    assert old.ids(engine) == new.ids(engine) == set(ids) | set(later)


async def publish_fleet_more(bus: EmbeddedBus) -> list[str]:
    events = [registered(f"late{i}", f"B{i}") for i in range(4)]
    await bus.publish(TOPIC, [OutRecord(key=e.subject, value=dump_event(e)) for e in events])
    return [str(e.event_id) for e in events]


async def test_an_idle_drain_polls_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = Settings(data_dir=tmp_path / "hub")
    async with build_hub(settings, adapters={}, projections=[Recorder("first"), Recorder("second")]) as hub:
        await drain(hub)  # joins the group
        [runner] = hub.runners
        consumer: Consumer | None = runner._consumer
        assert consumer is not None
        polls: list[float] = []
        real = consumer.poll

        async def counting(max_records: int = 500, timeout_s: float = 1.0) -> list[BusRecord]:
            polls.append(timeout_s)
            return await real(max_records=max_records, timeout_s=timeout_s)

        monkeypatch.setattr(consumer, "poll", counting)
        stats = await drain(hub)
    assert stats.projected == 0
    assert polls == [0.0]


async def test_tables_exist_before_any_task_starts(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "hub")
    recorder = Recorder("first")
    async with build_hub(settings, adapters={}, projections=[recorder]) as hub:
        with hub.engine.connect() as conn:
            assert conn.execute(select(func.count()).select_from(recorder.seen)).scalar_one() == 0
            assert pending(conn, "first") == []


async def test_a_database_that_refuses_the_tables_stops_the_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Reachable but refusing (here: locked past the busy timeout) is a failed start, with its reason."""
    monkeypatch.setattr(db_module, "SQLITE_BUSY_TIMEOUT_MS", 100)
    settings = Settings(data_dir=tmp_path / "hub")
    settings.data_dir.mkdir(parents=True)
    path = make_url(settings.database_url).database
    assert path is not None
    holder = sqlite3.connect(path, isolation_level=None)
    try:
        holder.execute("PRAGMA journal_mode=WAL")
        holder.execute("BEGIN IMMEDIATE")
        holder.execute("CREATE TABLE other_writer (x)")
        with pytest.raises(OperationalError, match="locked"):
            async with build_hub(settings, adapters={}, projections=[Recorder("first")]):
                pass
    finally:
        holder.close()


async def test_read_model_writes_are_synchronous_normal_and_others_full(engine: Engine) -> None:
    with write_transaction(engine, read_model=True) as conn:
        assert conn.execute(text("PRAGMA synchronous")).scalar_one() == 1  # NORMAL
    with write_transaction(engine) as conn:
        assert conn.execute(text("PRAGMA synchronous")).scalar_one() == 2  # FULL
    with engine.begin() as conn:
        assert conn.execute(text("PRAGMA synchronous")).scalar_one() == 2


async def test_pending_derived_events_are_read_through_the_index(engine: Engine) -> None:
    tracking_module.ensure_tables(engine, [Recorder("first")])
    with engine.connect() as conn:
        query = pending_query("first").compile(conn, compile_kwargs={"literal_binds": True})
        plan = " ".join(str(row[-1]) for row in conn.execute(text(f"EXPLAIN QUERY PLAN {query}")))
    assert "projection_outbox_pending" in plan
    assert "TEMP B-TREE" not in plan  # no sort of every unpublished row
