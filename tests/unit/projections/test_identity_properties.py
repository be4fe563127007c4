"""Properties of the registry with identity resolution on: batching, crashes and replays never change the result.

Streams mix registrations by several systems, links (mapping and person), events keyed by
unlinked identifiers (provisional records), merges, refused links (conflicts), loans and usage.
"""

from __future__ import annotations

import itertools
from datetime import timedelta
from typing import TYPE_CHECKING

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from projections.assets.registry import METADATA, AssetRegistry
from projections.assets.tables import aliases, assets, history, identifiers
from projections.runtime.db import write_transaction
from projections.runtime.derived import OUTBOX_METADATA, projection_outbox
from projections.runtime.tracking import TRACKING_METADATA, apply_batch, apply_once
from tests.unit.projections.factories import digest, records
from tests.unit.projections.registry_factories import (
    ER,
    T0,
    link,
    loaned,
    mint,
    reg,
    returned,
    status,
    used,
)

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from hub.ports import BusRecord
    from schemas.envelope import EventBase

SCHEMES = ("hrp.card", "udi", "serial", "his.code", "spd.code", "oa.no", "fhir.device")
DEVICES = 3
STATUSES = ("in_use", "idle", "under_repair", "sealed")


def ident(device: int, scheme: str) -> tuple[str, str]:
    return (scheme, f"德尔格|S{device}") if scheme == "serial" else (scheme, f"{scheme}-{device}")


@st.composite
def identity_events(draw: st.DrawFn, *, crossing: bool = True) -> list[EventBase]:
    """A stream about three devices; with `crossing`, links between devices (merges and conflicts) too.

    Business times are distinct per event so that, without crossing links, the outcome is a
    function of the set of events (the order test below relies on it).
    """
    out: list[EventBase] = []
    for i in range(draw(st.integers(1, 18))):
        if out and draw(st.integers(0, 9)) == 0:
            out.append(draw(st.sampled_from(out)))  # re-published after a translator crash
            continue
        device = draw(st.integers(0, DEVICES - 1))
        schemes = draw(st.lists(st.sampled_from(SCHEMES), min_size=1, max_size=3, unique=True))
        names = [ident(device, s) for s in schemes]
        subject = mint(*names[0])
        at = T0 + timedelta(minutes=i)
        label = f"e{i}"
        kind = draw(st.integers(0, 6 if crossing else 5))
        if kind == 0:
            out.append(reg(label, subject, *names, at=at, name=f"设备{device}", system="hrp"))
        elif kind == 1:
            by = draw(st.sampled_from(["mapping", "person"]))
            actor = "王" if by == "person" else None
            out.append(link(label, subject, *names[-1], by=by, actor=actor, at=at))
        elif kind == 2:
            out.append(status(label, subject, draw(st.sampled_from(STATUSES)), at=at))
        elif kind == 3:
            out.append(loaned(label, subject, f"L{device}", ER, at=at))
        elif kind == 4:
            out.append(returned(label, subject, f"L{device}", at=at))
        elif kind == 5:
            out.append(used(label, subject, at=at))
        else:
            other = ident(draw(st.integers(0, DEVICES - 1)), draw(st.sampled_from(SCHEMES)))
            by = draw(st.sampled_from(["mapping", "person"]))
            out.append(link(label, subject, *other, by=by, at=at))
    return out


def _reset(engine: Engine) -> None:
    with engine.begin() as conn:
        for table in [
            *METADATA.sorted_tables,
            *TRACKING_METADATA.sorted_tables,
            *OUTBOX_METADATA.sorted_tables,
        ]:
            conn.execute(table.delete())


def _outbox(engine: Engine) -> list[tuple[str, bytes]]:
    with engine.connect() as conn:
        rows = conn.execute(select(projection_outbox.c.event_id, projection_outbox.c.value))
        return sorted((str(i), bytes(v)) for i, v in rows)


def _state(engine: Engine) -> tuple[str, list[tuple[str, bytes]]]:
    return digest(engine, METADATA, TRACKING_METADATA), _outbox(engine)


class _Crash(Exception):
    """Stands for the process dying mid-batch: the transaction never commits."""


def _crash_after_apply(engine: Engine, projection: AssetRegistry, recs: list[BusRecord]) -> None:
    with write_transaction(engine) as conn:
        apply_once(conn, projection, recs)
        raise _Crash


def _apply(engine: Engine, stream: list[EventBase], cuts: list[int], crash_at: int | None = None) -> None:
    _reset(engine)
    recs = records(stream)
    bounds = [0, *sorted(set(cuts)), len(recs)]
    projection = AssetRegistry()
    for index, (lo, hi) in enumerate(itertools.pairwise(bounds)):
        if hi <= lo:
            continue
        if index == crash_at:
            with pytest.raises(_Crash):
                _crash_after_apply(engine, projection, recs[lo:hi])
        apply_batch(engine, projection, recs[lo:hi])


SETTINGS = settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


class TestExactlyOnce:
    @SETTINGS
    @given(stream=identity_events(), data=st.data())
    def test_any_batching_yields_the_same_tables(
        self, engine: Engine, stream: list[EventBase], data: st.DataObject
    ) -> None:
        """One batch, or split anywhere: identical tables (merges, conflicts and history included) and derived events."""
        cuts = data.draw(st.lists(st.integers(0, len(stream)), max_size=6))
        _apply(engine, stream, [])
        clean = _state(engine)
        _apply(engine, stream, cuts)
        assert _state(engine) == clean

    @SETTINGS
    @given(stream=identity_events(), data=st.data())
    def test_a_crash_mid_batch_then_restart_equals_one_clean_pass(
        self, engine: Engine, stream: list[EventBase], data: st.DataObject
    ) -> None:
        """A batch rolled back half-way and applied again leaves the same tables as never crashing."""
        cuts = data.draw(st.lists(st.integers(0, len(stream)), max_size=4))
        crash_at = data.draw(st.integers(0, len(set(cuts))))
        _apply(engine, stream, [])
        clean = _state(engine)
        _apply(engine, stream, cuts, crash_at=crash_at)
        assert _state(engine) == clean

    @SETTINGS
    @given(stream=identity_events())
    def test_applying_the_stream_twice_changes_nothing(self, engine: Engine, stream: list[EventBase]) -> None:
        """Redelivered offsets and re-published event ids (new offsets) leave every table as it was."""
        _apply(engine, stream, [])
        once = digest(engine, METADATA), _outbox(engine)
        projection = AssetRegistry()
        apply_batch(engine, projection, records(stream))  # the same offsets again
        apply_batch(engine, projection, records(stream, start=len(stream)))  # the same events, new offsets
        assert (digest(engine, METADATA), _outbox(engine)) == once


def _identity(engine: Engine) -> tuple[object, ...]:
    """What must not depend on arrival order: names -> golden ids, state, history placement."""
    with engine.connect() as conn:
        crosswalk = sorted(
            conn.execute(select(identifiers.c.scheme, identifiers.c.value, identifiers.c.asset_id)).all()
        )
        alias_rows = sorted(conn.execute(select(aliases)).all())
        columns = [c for c in assets.c if c.name != "updated_event_id"]
        rows = sorted(repr(tuple(r)) for r in conn.execute(select(*columns)))
        placed = sorted(
            conn.execute(select(history.c.event_id, history.c.asset_id, history.c.record_id)).all()
        )
    return crosswalk, alias_rows, rows, placed


class TestOrderIndependence:
    @SETTINGS
    @given(stream=identity_events(crossing=False), data=st.data())
    def test_links_in_any_order_give_the_same_golden_records(
        self, engine: Engine, stream: list[EventBase], data: st.DataObject
    ) -> None:
        """Without conflicting links, any arrival order yields the same golden ids, crosswalk, state and history."""
        _apply(engine, stream, [])
        expected = _identity(engine)
        _apply(engine, data.draw(st.permutations(stream)), [])
        assert _identity(engine) == expected
