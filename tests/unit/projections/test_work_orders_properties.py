"""Properties: the work-order tables depend on the event stream only (batching, repeats, crashes), and
the work-order rows on the set of events only (arrival order)."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from projections.runtime.db import write_transaction
from projections.runtime.tracking import apply_batch, apply_once
from projections.work_orders.projection import WorkOrders
from projections.work_orders.tables import METADATA, orders
from tests.unit.projections.test_work_orders_factories import (
    DB_PARAMS,
    full_digest,
    projection_database,
    reset,
    to_records,
    work_order_streams,
)

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from hub.ports import BusRecord
    from schemas.envelope import EventBase


@pytest.fixture(scope="module", params=DB_PARAMS)
def module_engine(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Engine]:
    yield from projection_database(request, tmp_path_factory, WorkOrders())


@pytest.fixture
def wo_engine(module_engine: Engine) -> Engine:
    """The module's read-model database (SQLite, then PostgreSQL), work-order tables empty."""
    reset(module_engine, METADATA)
    return module_engine


SETTINGS = settings(
    max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def crash_before_commit(engine: Engine, batch: list[BusRecord]) -> None:
    """Apply `batch` fully, then die before the commit (as a killed process would): all rolled back."""

    def killed() -> None:
        with write_transaction(engine) as conn:
            apply_once(conn, WorkOrders(), batch)
            raise RuntimeError("killed before the commit")

    with pytest.raises(RuntimeError, match="killed"):
        killed()


def _batches(recs: list[BusRecord], cuts: list[int]) -> list[list[BusRecord]]:
    bounds = [0, *sorted(set(cuts)), len(recs)]
    return [recs[lo:hi] for lo, hi in itertools.pairwise(bounds) if hi > lo]


def _pass(engine: Engine, stream: list[EventBase], cuts: list[int]) -> str:
    reset(engine, METADATA)
    for batch in _batches(to_records(stream), cuts):
        apply_batch(engine, WorkOrders(), batch)
    return full_digest(engine, METADATA)


def _order_rows(engine: Engine) -> list[tuple[object, ...]]:
    ignore = {"response_breach_level", "resolution_breach_level", "next_breach_at"}
    columns = [c for c in orders.columns if c.name not in ignore]
    with engine.connect() as conn:
        return sorted(tuple(r) for r in conn.execute(select(*columns)))


class TestStreamDeterminism:
    @SETTINGS
    @given(stream=work_order_streams(), data=st.data())
    def test_any_batching_yields_the_same_tables_and_breaches(
        self, wo_engine: Engine, stream: list[EventBase], data: st.DataObject
    ) -> None:
        """One batch, or the stream cut at random points, gives identical tables and staged breaches."""
        cuts = data.draw(st.lists(st.integers(0, len(stream)), max_size=6))
        assert _pass(wo_engine, stream, cuts) == _pass(wo_engine, stream, [])

    @SETTINGS
    @given(stream=work_order_streams())
    def test_applying_the_stream_twice_equals_once(self, wo_engine: Engine, stream: list[EventBase]) -> None:
        """Redelivered records change nothing at all; the same events re-published at new offsets
        change only the tracked offsets."""
        once = _pass(wo_engine, stream, [])
        tables_once = full_digest(wo_engine, METADATA, tracking=False)
        recs = to_records(stream)
        apply_batch(wo_engine, WorkOrders(), recs)
        redelivered = full_digest(wo_engine, METADATA)
        apply_batch(wo_engine, WorkOrders(), to_records(stream, start=len(recs)))
        assert (redelivered, full_digest(wo_engine, METADATA, tracking=False)) == (once, tables_once)

    @SETTINGS
    @given(stream=work_order_streams(), data=st.data())
    def test_a_crash_mid_batch_then_restart_equals_a_clean_pass(
        self, wo_engine: Engine, stream: list[EventBase], data: st.DataObject
    ) -> None:
        """A batch killed before its commit is rolled back; re-applying from there gives the clean tables."""
        cuts = data.draw(st.lists(st.integers(0, len(stream)), max_size=4))
        clean = _pass(wo_engine, stream, cuts)
        reset(wo_engine, METADATA)
        batches = _batches(to_records(stream), cuts)
        crash_at = data.draw(st.integers(0, len(batches) - 1))
        for i, batch in enumerate(batches):
            if i == crash_at:
                crash_before_commit(wo_engine, batch)
            apply_batch(wo_engine, WorkOrders(), batch)
        assert full_digest(wo_engine, METADATA) == clean


class TestOrderTolerance:
    @SETTINGS
    @given(stream=work_order_streams(), data=st.data())
    def test_work_order_rows_depend_on_the_events_not_their_order(
        self, wo_engine: Engine, stream: list[EventBase], data: st.DataObject
    ) -> None:
        """Any arrival order of the same events gives the same work-order rows (breach bookkeeping aside)."""
        shuffled = data.draw(st.permutations(stream))
        _pass(wo_engine, stream, [])
        in_order = _order_rows(wo_engine)
        _pass(wo_engine, list(shuffled), [])
        assert _order_rows(wo_engine) == in_order
