"""Corrections of noted units: read models end as if the first translation had been right.

A consumption booked at an unknown place, then `inventory.consumption_corrected` to the right
place, leaves the same ledger, units and stock (on hand) as the right consumption alone, in any
batching, applied once. A usage corrected to its department is summarised with it in the
history, and the correction has a history row of its own.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import pytest
from sqlalchemy import select

from hub.translation.corrections import correction
from hub.translation.snapshots import content_hash
from projections.assets.registry import AssetRegistry
from projections.assets.tables import history
from projections.inventory.projection import Inventory
from projections.inventory.tables import movements, positions, stock, unit_events, units
from projections.runtime.db import make_engine
from projections.runtime.tracking import apply_batch, ensure_tables
from schemas._base import DeptRef, LocationRef
from schemas.assets import AssetUsed, UsedPayload
from schemas.envelope import Source
from tests.unit.projections.factories import eid, record
from tests.unit.projections.test_inventory_factories import (
    OR,
    STENT,
    TOPIC,
    at,
    consumed,
    received,
    transferred,
)

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from schemas.envelope import EventBase

UNKNOWN = LocationRef()  # a ward code the mapping did not know: department unknown
THEATRE = LocationRef(department=OR.department, location="OR-03")  # a point of use in the department


def corrected(wrong: EventBase, right: EventBase) -> EventBase:
    payload = wrong.model_dump(mode="json")["payload"]
    return correction(right, payload, content_hash(right.model_dump(mode="json")["payload"]))


def stream(place_first: LocationRef) -> list[EventBase]:
    """Stock in, a serialised unit consumed (at `place_first`), more stock moved in after it."""
    return [
        received("r1", STENT, 5, lot="L1", when=at(0), place=OR, serials=["S1", "S2"]),
        consumed("c1", STENT, 1, place=place_first, lot="L1", serial="S1", when=at(1), patient_token="tok"),
        transferred("t1", STENT, 2, lot="L1", when=at(2), source=OR, target=THEATRE),
    ]


def tables(engine: Engine) -> dict[str, list[tuple[Any, ...]]]:
    """The read model's rows, without rows left with nothing at a place nothing is booked at any more."""
    out = {}
    with engine.connect() as conn:
        for table in (movements, units, unit_events):
            out[table.name] = sorted(tuple(r) for r in conn.execute(select(table)))
        for table in (stock, positions):
            rows = conn.execute(select(table)).mappings().all()
            out[table.name] = sorted(
                tuple(r.values()) for r in rows if r["on_hand"] != 0 or r["location_key"] != "|"
            )
    return out


@pytest.fixture
def make(tmp_path: Any) -> Any:
    made: list[Engine] = []

    def build(name: str) -> Engine:
        engine = make_engine(f"sqlite:///{tmp_path / name}.db")
        ensure_tables(engine, Inventory())
        made.append(engine)
        return engine

    yield build
    for engine in made:
        engine.dispose()


def feed(engine: Engine, events: list[EventBase], batch: int) -> None:
    recs = [record(e, i, topic=TOPIC) for i, e in enumerate(events)]
    for i in range(0, len(recs), batch):
        apply_batch(engine, Inventory(), recs[i : i + batch])


class TestConsumptionCorrected:
    @pytest.mark.parametrize("batch", [1, 2, 10])
    @pytest.mark.parametrize("point_of_use", [False, True])
    def test_as_if_the_place_had_been_known(self, make: Any, batch: int, point_of_use: bool) -> None:
        """Unknown place + correction == the right place from the start: ledger, units, stock; once."""
        place = THEATRE if point_of_use else OR
        wrong, right = stream(UNKNOWN), stream(place)
        fixed = [*wrong, corrected(wrong[1], right[1])]
        live, reference = make("live"), make("reference")
        feed(live, fixed, batch)
        feed(reference, right, 10)
        assert tables(live) == tables(reference)
        feed(live, fixed, 1)  # the same records again: applied once
        assert tables(live) == tables(reference)
        with live.connect() as conn:
            on_hand = dict(conn.execute(select(positions.c.location_key, positions.c.on_hand)).all())
        assert on_hand == {"0203|": Decimal(2), "|": Decimal(0), "0203|OR-03": Decimal(2)}

    def test_a_second_correction_undoes_the_first(self, make: Any) -> None:
        """unknown -> wrong department -> right one: the stock is consumed once, at the last place."""
        icu = LocationRef(department=DeptRef(code="0301", name="重症医学科"))
        first, middle, right = stream(UNKNOWN), stream(icu), stream(OR)
        fixed = [*first, corrected(first[1], middle[1]), corrected(middle[1], right[1])]
        for batch in (1, 10):
            live, reference = make(f"chain{batch}"), make(f"ref{batch}")
            feed(live, fixed, batch)
            feed(reference, right, 10)
            without_icu = {k: [r for r in v if "0301|" not in r] for k, v in tables(live).items()}
            assert without_icu == tables(reference)


class TestUsageCorrected:
    def test_history_shows_the_department_and_the_correction(self, tmp_path: Any) -> None:
        engine = make_engine(f"sqlite:///{tmp_path / 'assets.db'}")
        ensure_tables(engine, AssetRegistry())
        source = Source(system="his", site="main", message_id="ORU1", adapter_version="t")
        base = {"occurred_at": at(1), "recorded_at": at(1) + timedelta(minutes=1), "source": source}
        wrong = AssetUsed(event_id=eid("u1"), subject="his:asset:V1", **base, payload=UsedPayload())
        right = wrong.model_copy(
            update={"payload": UsedPayload(department=DeptRef(code="0202", name="呼吸科"))}
        )
        events = [wrong, corrected(wrong, right)]
        recs = [record(e, i, topic="canonical.asset.v1") for i, e in enumerate(events)]
        for batch in ([recs[0]], [recs[1]]):
            apply_batch(engine, AssetRegistry(), batch)
        apply_batch(engine, AssetRegistry(), recs)  # again: nothing applied twice
        with engine.connect() as conn:
            rows = conn.execute(
                select(history.c.type, history.c.summary).order_by(history.c.recorded_at)
            ).all()
        engine.dispose()
        assert [tuple(r) for r in rows] == [
            ("asset.used", "used in 呼吸科"),
            ("asset.usage_corrected", "usage corrected: 呼吸科 (was department unknown)"),
        ]
