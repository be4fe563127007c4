"""Property: `inventory.below_minimum` fires exactly on each fall from >= minimum to < minimum.

Random sequences of receipts, consumptions, transfers in and out, stocktakes and threshold
changes at one place, in business-time order and applied in random batches, against a model
that walks the same sequence: a crossing is a step whose level before was at or above the
minimum then in force (no minimum: nothing to fall below) and whose level after is under it.
Stock rising, from empty or from under the minimum, never publishes.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine

from schemas.derived import InventoryBelowMinimum, InventoryReorderRequested
from schemas.envelope import EventBase
from tests.unit.projections.test_inventory_factories import (
    CENTRAL,
    OR,
    RESET,
    STENT,
    Feed,
    at,
    consumed,
    counted,
    inventory_engine,
    received,
    staged,
    stent_master,
    threshold,
    transferred,
)

# (kind, quantity): quantity is a delta for movements, the count or the new minimum otherwise.
Step = tuple[str, int]
STEPS = st.lists(
    st.one_of(
        st.tuples(st.sampled_from(["in", "out", "transfer_in", "transfer_out"]), st.integers(1, 8)),
        st.tuples(st.just("count"), st.integers(0, 15)),
        st.tuples(st.just("minimum"), st.integers(0, 12)),
    ),
    min_size=1,
    max_size=14,
)


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    yield from inventory_engine(db_url)


def _event(i: int, step: Step) -> EventBase:
    kind, n = step
    label, when = f"s{i}", at(1 + i)
    if kind == "in":
        return received(label, STENT, n, place=OR, when=when)
    if kind == "out":
        return consumed(label, STENT, n, place=OR, when=when)
    if kind == "transfer_in":
        return transferred(label, STENT, n, source=CENTRAL, target=OR, when=when)
    if kind == "transfer_out":
        return transferred(label, STENT, n, source=OR, target=CENTRAL, when=when)
    if kind == "count":
        return counted(label, STENT, n, place=OR, when=when)
    return threshold(label, STENT, OR, n, n + 10, when=when)


def _expected(steps: list[Step]) -> list[Decimal]:
    """The on-hand level at each crossing the model sees, in order."""
    level, minimum, stocked = Decimal(0), None, False
    out = []
    for kind, n in steps:
        was_ok = stocked and (minimum is None or level >= minimum)
        if kind == "minimum":
            minimum = Decimal(n)
        elif kind == "count":
            level, stocked = Decimal(n), True
        else:
            level += n if kind in ("in", "transfer_in") else -n
            stocked = True
        if was_ok and minimum is not None and level < minimum:
            out.append(level)
    return out


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=STEPS, cuts=st.lists(st.integers(1, 14), max_size=4), start=st.integers(0, 12))
def test_below_minimum_fires_exactly_on_each_fall(
    engine: Engine, steps: list[Step], cuts: list[int], start: int
) -> None:
    with engine.begin() as conn:
        for table in RESET:
            conn.execute(table.delete())
    steps = [("minimum", start), *steps]
    events = [_event(i, s) for i, s in enumerate(steps)]
    feed = Feed(engine)
    feed.apply(stent_master())
    bounds = sorted({0, *(c for c in cuts if c < len(events)), len(events)})
    for lo, hi in itertools.pairwise(bounds):
        feed.apply(*events[lo:hi])
    derived = staged(engine)
    below = [e for e in derived if isinstance(e, InventoryBelowMinimum)]
    assert [e.payload.on_hand for e in below] == _expected(steps)
    # Every alert is caused by a fall (or a raised minimum), never by stock coming in.
    risen = {str(e.event_id) for e, (k, _) in zip(events, steps, strict=True) if k in ("in", "transfer_in")}
    assert not [e for e in below if e.causation_id in risen]
    reorders = [e for e in derived if isinstance(e, InventoryReorderRequested)]
    assert {e.causation_id for e in reorders} <= {e.causation_id for e in below}
