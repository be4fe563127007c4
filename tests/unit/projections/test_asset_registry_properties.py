"""Property: the registry's tables depend on the event stream only, not on how it was batched."""

from __future__ import annotations

import itertools
from datetime import timedelta
from typing import TYPE_CHECKING

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from projections.asset_registry import METADATA, AssetRegistry
from projections.tracking import TRACKING_METADATA, apply_batch
from schemas._base import DeptRef
from schemas.assets import AssetStatus
from tests.unit.projections.factories import (
    T0,
    corrected,
    decommissioned,
    digest,
    linked,
    records,
    registered,
    relocated,
    status_changed,
)

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from schemas.envelope import EventBase

ASSETS = ("A1", "A2", "A3")
DEPTS = (DeptRef(code="ICU", name="重症医学科"), DeptRef(code="ER", name="急诊科"), DeptRef(name="库房"))
NAMES = ("呼吸机", "监护仪", None)


@st.composite
def asset_events(draw: st.DrawFn) -> list[EventBase]:
    """A stream over three assets, business times that tie and go backwards, and re-published events."""
    out: list[EventBase] = []
    for i in range(draw(st.integers(1, 25))):
        if out and draw(st.integers(0, 9)) == 0:
            out.append(draw(st.sampled_from(out)))  # the same event again, as after a translator crash
            continue
        asset = draw(st.sampled_from(ASSETS))
        at = T0 + timedelta(hours=draw(st.integers(0, 4)))
        label = f"e{i}"
        kind = draw(st.integers(0, 5))
        if kind == 0:
            out.append(
                registered(
                    label,
                    asset,
                    at=at,
                    name=draw(st.sampled_from(NAMES)),
                    card=draw(st.sampled_from(["C1", "C2", None])),
                )
            )
        elif kind == 1:
            out.append(status_changed(label, asset, draw(st.sampled_from(list(AssetStatus))), at=at))
        elif kind == 2:
            dept = draw(st.sampled_from(DEPTS))
            out.append(
                relocated(
                    label,
                    asset,
                    code=dept.code,
                    name=dept.name,
                    location=draw(st.sampled_from(["1床", None])),
                    at=at,
                )
            )
        elif kind == 3:
            fields = draw(
                st.lists(
                    st.sampled_from(["name", "department", "status", "location"]), min_size=1, unique=True
                )
            )
            out.append(
                corrected(
                    label,
                    asset,
                    fields,
                    at=at,
                    name=draw(st.sampled_from(NAMES)),
                    department=draw(st.sampled_from(DEPTS)),
                    status=AssetStatus.SEALED,
                )
            )
        elif kind == 4:
            out.append(decommissioned(label, asset, at=at))
        else:
            out.append(linked(label, asset, "udi", draw(st.sampled_from(["U1", "U2"])), at=at))
    return out


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
