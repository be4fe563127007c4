"""Properties: the compliance tables depend on the stream only (batching, repeats, crashes), and the
obligations on the set of facts only (arrival order)."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, select

from hub.ports import BusRecord
from projections.compliance.projection import Compliance
from projections.compliance.tables import METADATA, items
from projections.runtime.db import write_transaction
from projections.runtime.tracking import apply_batch, apply_once
from schemas.envelope import EventBase
from tests.unit.projections.test_compliance_factories import compliance_streams
from tests.unit.projections.test_work_orders_factories import (
    DB_PARAMS,
    full_digest,
    projection_database,
    reset,
    to_records,
)

SETTINGS = settings(
    max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@pytest.fixture(scope="module", params=DB_PARAMS)
def module_engine(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Engine]:
    yield from projection_database(request, tmp_path_factory, Compliance())


@pytest.fixture
def engine(module_engine: Engine) -> Engine:
    """The module's database (SQLite, then PostgreSQL) with the compliance tables, empty."""
    reset(module_engine, METADATA)
    return module_engine


def crash_before_commit(engine: Engine, batch: list[BusRecord]) -> None:
    """Apply `batch` fully, then die before the commit (as a killed process would): all rolled back."""

    def killed() -> None:
        with write_transaction(engine) as conn:
            apply_once(conn, Compliance(), batch)
            raise RuntimeError("killed before the commit")

    with pytest.raises(RuntimeError, match="killed"):
        killed()


def _batches(recs: list[BusRecord], cuts: list[int]) -> list[list[BusRecord]]:
    bounds = [0, *sorted(set(cuts)), len(recs)]
    return [recs[lo:hi] for lo, hi in itertools.pairwise(bounds) if hi > lo]


def _pass(engine: Engine, stream: list[EventBase], cuts: list[int]) -> str:
    reset(engine, METADATA)
    for batch in _batches(to_records(stream), cuts):
        apply_batch(engine, Compliance(), batch)
    return full_digest(engine, METADATA)


def _obligations(engine: Engine) -> list[tuple[object, ...]]:
    # Department and registration event follow arrival order on ties, as in the registry.
    hidden = {
        "department_code",
        "department_name",
        "cause_event_id",
        "asset_name",
        "category_code",
        "category_name",
    }
    with engine.connect() as conn:
        return sorted(
            tuple(r) for r in conn.execute(select(*[c for c in items.columns if c.name not in hidden]))
        )


class TestStreamDeterminism:
    @SETTINGS
    @given(stream=compliance_streams(), data=st.data())
    def test_any_batching_yields_the_same_tables(
        self, engine: Engine, stream: list[EventBase], data: st.DataObject
    ) -> None:
        """One batch, or the stream cut at random points, gives identical tables."""
        cuts = data.draw(st.lists(st.integers(0, len(stream)), max_size=6))
        assert _pass(engine, stream, cuts) == _pass(engine, stream, [])

    @SETTINGS
    @given(stream=compliance_streams())
    def test_applying_the_stream_twice_equals_once(self, engine: Engine, stream: list[EventBase]) -> None:
        """Redelivered records change nothing; re-published events change only the tracked offsets."""
        once = _pass(engine, stream, [])
        tables_once = full_digest(engine, METADATA, tracking=False)
        recs = to_records(stream)
        apply_batch(engine, Compliance(), recs)
        redelivered = full_digest(engine, METADATA)
        apply_batch(engine, Compliance(), to_records(stream, start=len(recs)))
        assert (redelivered, full_digest(engine, METADATA, tracking=False)) == (once, tables_once)

    @SETTINGS
    @given(stream=compliance_streams(), data=st.data())
    def test_a_crash_mid_batch_then_restart_equals_a_clean_pass(
        self, engine: Engine, stream: list[EventBase], data: st.DataObject
    ) -> None:
        """A batch killed before its commit is rolled back; re-applying from there gives the clean tables."""
        cuts = data.draw(st.lists(st.integers(0, len(stream)), max_size=4))
        clean = _pass(engine, stream, cuts)
        reset(engine, METADATA)
        batches = _batches(to_records(stream), cuts)
        crash_at = data.draw(st.integers(0, len(batches) - 1))
        for i, batch in enumerate(batches):
            if i == crash_at:
                crash_before_commit(engine, batch)
            apply_batch(engine, Compliance(), batch)
        assert full_digest(engine, METADATA) == clean

    @SETTINGS
    @given(stream=compliance_streams(), data=st.data())
    def test_due_dates_depend_on_the_facts_not_their_order(
        self, engine: Engine, stream: list[EventBase], data: st.DataObject
    ) -> None:
        """Any arrival order of the same facts gives the same due dates, bases and results."""
        shuffled = data.draw(st.permutations(stream))
        _pass(engine, stream, [])
        in_order = _obligations(engine)
        _pass(engine, list(shuffled), [])
        assert _obligations(engine) == in_order
