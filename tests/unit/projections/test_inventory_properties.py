"""Properties: the inventory tables depend on the event stream only; levels are a function of the ledger."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, select

from hub.ports import BusRecord
from projections.inventory.alerts import is_below
from projections.inventory.projection import Inventory
from projections.inventory.tables import METADATA, movements, positions, stock
from projections.runtime.db import make_engine, write_transaction
from projections.runtime.tracking import apply_batch, apply_once
from schemas.envelope import EventBase
from tests.unit.projections.factories import digest, records
from tests.unit.projections.test_inventory_factories import (
    RESET,
    inventory_engine,
    inventory_streams,
    outbox_ids,
    tables_digest,
)

SETTINGS = settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


class Crash(RuntimeError):
    """The process dying after the batch was folded and written, before the commit."""


def _apply_then_die(engine: Engine, recs: list[BusRecord]) -> None:
    with write_transaction(engine) as conn:
        apply_once(conn, Inventory(), recs)
        raise Crash


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    yield from inventory_engine(db_url)


def _reset(engine: Engine) -> None:
    with engine.begin() as conn:
        for table in RESET:
            conn.execute(table.delete())


def _state(engine: Engine) -> tuple[str, list[tuple[str, bytes]]]:
    return tables_digest(engine), outbox_ids(engine)


def _apply_in(
    engine: Engine, stream: list[EventBase], cuts: list[int]
) -> tuple[str, list[tuple[str, bytes]]]:
    _reset(engine)
    recs = records(stream)
    bounds = [0, *sorted(set(cuts)), len(recs)]
    for lo, hi in itertools.pairwise(bounds):
        if hi > lo:
            apply_batch(engine, Inventory(), recs[lo:hi])
    return _state(engine)


class TestStreamDeterminesTables:
    @SETTINGS
    @given(stream=inventory_streams(), data=st.data())
    def test_any_batching_yields_the_same_tables_and_alerts(
        self, engine: Engine, stream: list[EventBase], data: st.DataObject
    ) -> None:
        """One batch or split at random points: identical tables and identical derived events."""
        cuts = data.draw(st.lists(st.integers(0, len(stream)), max_size=6))
        assert _apply_in(engine, stream, cuts) == _apply_in(engine, stream, [])

    @SETTINGS
    @given(stream=inventory_streams())
    def test_applying_the_stream_twice_equals_once(self, engine: Engine, stream: list[EventBase]) -> None:
        """The same events re-published at new offsets (a translator's crash-retry) change nothing."""
        _reset(engine)
        apply_batch(engine, Inventory(), records(stream))
        once = digest(engine, METADATA), outbox_ids(engine)
        apply_batch(engine, Inventory(), records(stream, start=len(stream)))
        # Only the tracked offsets moved on: the read model and the staged alerts are untouched.
        assert (digest(engine, METADATA), outbox_ids(engine)) == once

    @SETTINGS
    @given(stream=inventory_streams(), data=st.data())
    def test_a_crash_mid_stream_then_restart_equals_one_clean_pass(
        self, engine: Engine, stream: list[EventBase], data: st.DataObject, db_url: str
    ) -> None:
        """A batch that dies before commit leaves nothing behind; a restarted projector converges."""
        clean = _apply_in(engine, stream, [])
        _reset(engine)
        recs = records(stream)
        cut = data.draw(st.integers(0, len(recs)))
        crash_at = data.draw(st.integers(cut, len(recs)))
        if cut:
            apply_batch(engine, Inventory(), recs[:cut])
        before = _state(engine)
        if crash_at > cut:
            with pytest.raises(Crash):
                _apply_then_die(engine, recs[cut:crash_at])
        assert _state(engine) == before
        restarted = make_engine(db_url)  # a new process: new engine, new projection instance
        try:
            apply_batch(restarted, Inventory(), recs[cut:])
        finally:
            restarted.dispose()
        assert _state(engine) == clean


class TestLevelsFollowTheLedger:
    @SETTINGS
    @given(stream=inventory_streams(), data=st.data())
    def test_each_level_is_the_latest_count_plus_later_movements(
        self, engine: Engine, stream: list[EventBase], data: st.DataObject
    ) -> None:
        """on hand = latest count (by time, then id) + movements after it; a place's total sums its lots."""
        _apply_in(engine, stream, data.draw(st.lists(st.integers(0, len(stream)), max_size=4)))
        with engine.connect() as conn:
            ledger = [dict(r) for r in conn.execute(select(movements)).mappings()]
            levels = {r["stock_key"]: r for r in conn.execute(select(stock)).mappings()}
            places = [dict(r) for r in conn.execute(select(positions)).mappings()]
        expected: dict[tuple[str, str, str], Decimal] = {}
        for row_key in {(m["item_id"], m["location_key"], m["lot_key"]) for m in ledger}:
            rows = [m for m in ledger if (m["item_id"], m["location_key"], m["lot_key"]) == row_key]
            counts = sorted(
                (m["occurred_at"], m["event_id"], m["quantity"]) for m in rows if m["kind"] == "counted"
            )
            since, base = (counts[-1][0], counts[-1][2]) if counts else (None, Decimal(0))
            moved = (
                m["quantity"]
                for m in rows
                if m["kind"] != "counted" and (since is None or m["occurred_at"] > since)
            )
            expected[row_key] = base + sum(moved, Decimal(0))
        assert {
            (r["item_id"], r["location_key"], r["lot_key"]): r["on_hand"] for r in levels.values()
        } == expected
        for place in places:
            lots = [
                r["on_hand"]
                for r in levels.values()
                if (r["item_id"], r["location_key"]) == (place["item_id"], place["location_key"])
            ]
            assert place["on_hand"] == sum(lots, Decimal(0))
            assert place["below"] == is_below(place)
