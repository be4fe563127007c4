"""Property: the registry's tables depend on the event stream only, not on how it was batched."""

from __future__ import annotations

import itertools
from typing import TYPE_CHECKING

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from projections.assets.registry import METADATA, AssetRegistry
from projections.runtime.tracking import TRACKING_METADATA, apply_batch
from tests.unit.projections.factories import (
    asset_events,
    digest,
    records,
)

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from schemas.envelope import EventBase


def _reset(engine: Engine) -> None:
    with engine.begin() as conn:
        for table in [*METADATA.sorted_tables, *TRACKING_METADATA.sorted_tables]:
            conn.execute(table.delete())


def _apply_in(engine: Engine, stream: list[EventBase], cuts: list[int]) -> str:
    _reset(engine)
    recs = records(stream)
    bounds = [0, *sorted(set(cuts)), len(recs)]
    for lo, hi in itertools.pairwise(bounds):
        if hi > lo:
            apply_batch(engine, AssetRegistry(), recs[lo:hi])
    return digest(engine, METADATA, TRACKING_METADATA)


SETTINGS = settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


class TestBatchingInvariance:
    @SETTINGS
    @given(stream=asset_events(), data=st.data())
    def test_any_batching_yields_the_same_tables(
        self, engine: Engine, stream: list[EventBase], data: st.DataObject
    ) -> None:
        """Applying a stream in one batch or split at random points gives identical tables."""
        cuts = data.draw(st.lists(st.integers(0, len(stream)), max_size=6))
        assert _apply_in(engine, stream, cuts) == _apply_in(engine, stream, [])

    @SETTINGS
    @given(stream=asset_events())
    def test_one_event_per_batch_equals_one_batch(self, engine: Engine, stream: list[EventBase]) -> None:
        """The extreme split, one event per transaction, matches the single batch."""
        assert _apply_in(engine, stream, list(range(len(stream)))) == _apply_in(engine, stream, [])
