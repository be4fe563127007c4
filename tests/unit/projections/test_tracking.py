"""apply_once: the exactly-once bookkeeping around a projection's batch apply."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import pytest
from sqlalchemy import Connection, Engine, MetaData, select
from structlog.testing import capture_logs

from projections.assets.registry import METADATA, AssetRegistry, get_asset
from projections.runtime.db import make_engine
from projections.runtime.decode import decode_all
from projections.runtime.tracking import (
    TRACKING_METADATA,
    apply_batch,
    apply_together,
    ensure_tables,
    projection_applied_events,
    projection_poison,
    tracked_offsets,
)
from schemas.catalogue import Event, dump_event
from schemas.inventory import InventoryItemDefined
from tests.unit.projections.factories import (
    TOPIC,
    corrected,
    digest,
    record,
    records,
    registered,
    status_changed,
)

if TYPE_CHECKING:
    from collections.abc import Sequence
    from pathlib import Path


def _tables(engine: Engine) -> str:
    return digest(engine, METADATA, TRACKING_METADATA)


def _asset(engine: Engine, asset_id: str) -> dict[str, object]:
    with engine.connect() as conn:
        row = get_asset(conn, asset_id)
    assert row is not None
    return row


class _Crashing:
    """The asset registry, but the database connection dies after the projection wrote."""

    name = "asset_registry"
    topics = ("canonical.asset.v1",)
    metadata: MetaData = METADATA

    def apply(self, conn: Connection, events: Sequence[Event]) -> None:
        AssetRegistry().apply(conn, events)
        raise RuntimeError("simulated crash after the read model was written")


class _Recorder:
    """A projection that keeps the ids of the events handed to it, in order."""

    name = "recorder"
    topics = ("canonical.asset.v1",)
    metadata = MetaData()

    def __init__(self) -> None:
        self.seen: list[str] = []

    def apply(self, conn: Connection, events: Sequence[Event]) -> None:
        del conn
        self.seen += [str(e.event_id) for e in events]


def _claims_of_one_event_by_two_projections(engine: Engine) -> tuple[list[str], list[str]]:
    """The registry applies r1 and c1 alone; then it and a recorder that never saw them take one
    batch holding c1 again (re-published) and r2. Returns (the batch's outcomes, what the recorder got)."""
    c1 = corrected("c1", "A1", ["name"], name="旧名称")
    apply_batch(engine, AssetRegistry(), records([registered("r1", "A1"), c1]))
    recorder = _Recorder()
    batch = [record(c1, 2), record(registered("r2", "A2"), 3)]
    outcomes = apply_together(engine, [(AssetRegistry(), batch), (recorder, batch)], decode_all(batch))
    got = [f"{name}: {o.applied} applied, {o.duplicates} duplicate" for name, o in sorted(outcomes.items())]
    return got, recorder.seen


class TestApplyOnce:
    def test_applying_the_same_batch_twice_equals_applying_it_once(self, engine: Engine, db_url: str) -> None:
        """Re-applying records already applied leaves every table byte-for-byte the same."""
        batch = records(
            [registered("r1", "A1"), status_changed("s1", "A1", "under_repair"), registered("r2", "A2")]
        )
        apply_batch(engine, AssetRegistry(), batch)
        once = _tables(engine)
        outcome = apply_batch(engine, AssetRegistry(), batch)
        assert outcome.applied == 0
        assert outcome.redelivered == 3
        assert _tables(engine) == once

    def test_a_batch_with_a_repeated_event_id_applies_it_once(self, engine: Engine) -> None:
        """The same event re-published at a later offset within one batch is applied only once."""
        first = corrected("c1", "A1", ["name"], name="旧名称")
        batch = records(
            [registered("r1", "A1"), first, corrected("c2", "A1", ["name"], name="新名称"), first]
        )
        outcome = apply_batch(engine, AssetRegistry(), batch)
        assert (outcome.applied, outcome.duplicates) == (3, 1)
        assert _asset(engine, "A1")["name"] == "新名称"

    def test_an_event_id_applied_in_an_earlier_batch_is_skipped(self, engine: Engine) -> None:
        """A translator re-publishing an applied event (new offset, same id) changes nothing."""
        first = corrected("c1", "A1", ["name"], name="旧名称")
        apply_batch(
            engine,
            AssetRegistry(),
            records([registered("r1", "A1"), first, corrected("c2", "A1", ["name"], name="新名称")]),
        )
        outcome = apply_batch(engine, AssetRegistry(), [record(first, 3)])
        assert (outcome.applied, outcome.duplicates) == (0, 1)
        assert _asset(engine, "A1")["name"] == "新名称"
        with engine.connect() as conn:
            assert tracked_offsets(conn, "asset_registry") == {(TOPIC, 0): 3}

    def test_claims_taken_together_stay_each_projections_own(self, engine: Engine) -> None:
        """In one batch for several projections, an event one of them applied before is a duplicate
        for that one only; the other applies it once, and again nothing on a third delivery."""
        got, seen = _claims_of_one_event_by_two_projections(engine)
        assert got == ["asset_registry: 1 applied, 1 duplicate", "recorder: 2 applied, 0 duplicate"]
        assert seen == [
            str(corrected("c1", "A1", ["name"], name="旧名称").event_id),
            str(registered("r2", "A2").event_id),
        ]
        again = [record(corrected("c1", "A1", ["name"], name="旧名称"), 4)]
        outcomes = apply_together(engine, [(AssetRegistry(), again), (_Recorder(), again)], decode_all(again))
        assert {name: (o.applied, o.duplicates) for name, o in outcomes.items()} == {
            "asset_registry": (0, 1),
            "recorder": (0, 1),
        }

    def test_claims_in_a_table_keyed_by_projection_first_still_count(self, tmp_path: Path) -> None:
        """A database created when event ids were keyed (projection, event_id), with a rowid, keeps
        that table; claims read and write it the same way."""
        engine = make_engine(f"sqlite:///{tmp_path / 'old.db'}")
        with engine.begin() as conn:
            conn.exec_driver_sql(
                "CREATE TABLE projection_applied_events (projection VARCHAR(100) NOT NULL,"
                " event_id VARCHAR(36) NOT NULL, PRIMARY KEY (projection, event_id))"
            )
        ensure_tables(engine, AssetRegistry())
        got, _ = _claims_of_one_event_by_two_projections(engine)
        assert got == ["asset_registry: 1 applied, 1 duplicate", "recorder: 2 applied, 0 duplicate"]
        with engine.connect() as conn:
            sql = conn.exec_driver_sql(
                "SELECT sql FROM sqlite_master WHERE name = 'projection_applied_events'"
            ).scalar_one()
            claims = conn.execute(select(projection_applied_events.c.projection)).scalars().all()
        assert "PRIMARY KEY (projection, event_id)" in sql
        assert sorted(claims).count("recorder") == 2
        engine.dispose()

    def test_redelivered_offsets_are_skipped_by_position(self, engine: Engine) -> None:
        """A record at an offset at or below the tracked one is not applied, whatever it carries."""
        apply_batch(engine, AssetRegistry(), records([registered("r1", "A1", model="SV300")]))
        replay = [
            record(corrected("c-model", "A1", ["model"], model="X"), 0),
            record(corrected("c-name", "A1", ["name"], name="新"), 1),
        ]
        outcome = apply_batch(engine, AssetRegistry(), replay)
        assert (outcome.redelivered, outcome.applied) == (1, 1)
        row = _asset(engine, "A1")
        assert (row["model"], row["name"]) == ("SV300", "新")

    def test_tracking_keeps_the_last_offset_of_each_partition(self, engine: Engine) -> None:
        """Offsets are tracked per (topic, partition), and the outcome reports the batch's positions."""
        batch = [
            *records([registered("r1", "A1"), registered("r2", "A2")], start=5, partition=0),
            *records([registered("r3", "A3")], start=9, partition=2),
        ]
        outcome = apply_batch(engine, AssetRegistry(), batch)
        expected = {(TOPIC, 0): 6, (TOPIC, 2): 9}
        assert outcome.positions == expected
        with engine.connect() as conn:
            assert tracked_offsets(conn, "asset_registry") == expected

    def test_event_types_the_projection_does_not_handle_are_recorded_not_errors(self, engine: Engine) -> None:
        """An event outside the projection's interest is marked applied and leaves the read model alone."""
        other = InventoryItemDefined.model_validate(
            {
                "event_id": "00000000-0000-4000-8000-000000000001",
                "occurred_at": "2024-03-01T08:00:00Z",
                "recorded_at": "2024-03-01T08:00:00Z",
                "subject": "ITM-1",
                "source": {"system": "spd", "site": "main", "message_id": "m", "adapter_version": "1"},
                "payload": {"item_code": "C1", "name": "注射器"},
            }
        )
        outcome = apply_batch(engine, AssetRegistry(), [record(other, 0)])
        assert outcome.applied == 1
        with engine.connect() as conn:
            ids = conn.execute(select(projection_applied_events.c.event_id)).scalars().all()
            asset_rows = sum(len(conn.execute(select(t)).all()) for t in METADATA.tables.values())
        assert ids == ["00000000-0000-4000-8000-000000000001"]
        assert asset_rows == 0


class TestPoison:
    def _batch(self) -> list:
        not_json = b"\xff\xfe not json"
        bad_event = json.loads(dump_event(registered("bad", "A9", name="张三的呼吸机")))
        bad_event["payload"]["details"]["status"] = "exploded"
        return [
            record(registered("r1", "A1"), 0),
            record(not_json, 1),
            record(json.dumps(bad_event, ensure_ascii=False).encode(), 2),
            record(b"[1, 2]", 3),
            record(registered("r2", "A2"), 4),
        ]

    def test_records_that_are_not_events_are_recorded_and_the_rest_applies(self, engine: Engine) -> None:
        """Poison goes to projection_poison, the good records around it apply, tracking moves past it."""
        outcome = apply_batch(engine, AssetRegistry(), self._batch())
        assert (outcome.applied, outcome.poisoned) == (2, 3)
        with engine.connect() as conn:
            poison = (
                conn.execute(select(projection_poison).order_by(projection_poison.c.offset)).mappings().all()
            )
            assert tracked_offsets(conn, "asset_registry") == {(TOPIC, 0): 4}
        assert [p["offset"] for p in poison] == [1, 2, 3]
        assert poison[1]["event_id"] is not None
        assert "payload.details.status" in poison[1]["error"]
        assert "JSON list" in poison[2]["error"]
        _asset(engine, "A2")

    def test_poison_errors_and_logs_carry_no_payload_values(self, engine: Engine) -> None:
        """Neither the stored error nor the log line repeats values from the bad payload."""
        with capture_logs() as logs:
            apply_batch(engine, AssetRegistry(), self._batch())
        with engine.connect() as conn:
            errors = conn.execute(select(projection_poison.c.error)).scalars().all()
        assert [e["event"] for e in logs].count("projection_event_poisoned") == 3
        for text in [*errors, *(repr(e) for e in logs)]:
            assert "张三" not in text
            assert "exploded" not in text

    def test_a_poison_record_redelivered_is_not_recorded_twice(self, engine: Engine) -> None:
        """Redelivery of a batch with poison is skipped by offset like any other record."""
        apply_batch(engine, AssetRegistry(), self._batch())
        outcome = apply_batch(engine, AssetRegistry(), self._batch())
        assert (outcome.redelivered, outcome.poisoned) == (5, 0)


class TestCrash:
    def test_a_crash_inside_the_batch_leaves_the_tables_untouched(self, engine: Engine) -> None:
        """An error after the projection wrote rolls back read model, event ids and offsets together."""
        apply_batch(engine, AssetRegistry(), records([registered("r1", "A1")]))
        before = _tables(engine)
        batch = [record(status_changed("s1", "A1", "under_repair"), 1), record(registered("r2", "A2"), 2)]
        with pytest.raises(RuntimeError, match="simulated crash"):
            apply_batch(engine, _Crashing(), batch)
        assert _tables(engine) == before

    def test_restarting_after_a_crash_gives_the_same_tables_as_no_crash(
        self, engine: Engine, db_url: str
    ) -> None:
        """Crash, then re-apply from the tracked position: the tables equal an uninterrupted run."""
        stream = records(
            [registered("r1", "A1"), status_changed("s1", "A1", "under_repair"), registered("r2", "A2")]
        )
        apply_batch(engine, AssetRegistry(), stream[:1])
        with pytest.raises(RuntimeError):
            apply_batch(engine, _Crashing(), stream[1:])
        apply_batch(engine, AssetRegistry(), stream)  # the restarted runner re-reads from the bus
        crashed = _tables(engine)

        clean = make_engine(db_url)
        for table in reversed([*METADATA.sorted_tables, *TRACKING_METADATA.sorted_tables]):
            with clean.begin() as conn:
                conn.execute(table.delete())
        apply_batch(clean, AssetRegistry(), stream)
        assert _tables(clean) == crashed
        clean.dispose()
