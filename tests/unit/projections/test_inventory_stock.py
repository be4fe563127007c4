"""Inventory levels: movements, stocktakes in and out of order, units, item master and thresholds."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal

import pytest
from sqlalchemy import Engine, select

from projections.inventory.projection import Inventory, InventoryConfig
from projections.inventory.tables import items, join_key, movements, units
from schemas._base import LocationRef
from tests.unit.projections.test_inventory_factories import (
    CENTRAL,
    ICU,
    OR,
    STENT,
    STENT_GTIN,
    Feed,
    at,
    consumed,
    counted,
    defined,
    disposed,
    gs1,
    inventory_engine,
    level,
    position,
    received,
    threshold,
    transferred,
)


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    yield from inventory_engine(db_url)


@pytest.fixture
def feed(engine: Engine) -> Feed:
    return Feed(engine)


def unit(engine: Engine, item: str, serial: str) -> dict:
    with engine.connect() as conn:
        return dict(
            conn.execute(select(units).where(units.c.unit_key == join_key(item, serial))).mappings().one()
        )


class TestMovements:
    def test_receipt_puts_stock_at_its_place_and_lot(self, engine: Engine, feed: Feed) -> None:
        """A receipt adds its quantity to item × place × lot, and to the place's total."""
        feed.apply(received("r1", STENT, 100, lot="L1"), received("r2", STENT, 20, lot="L2"))
        assert (level(engine, STENT, CENTRAL, "L1"), level(engine, STENT, CENTRAL, "L2")) == (100, 20)
        assert position(engine, STENT, CENTRAL)["on_hand"] == 120

    def test_transfer_moves_stock_between_places(self, engine: Engine, feed: Feed) -> None:
        """A transfer takes from its source place and adds to its target, lot kept."""
        feed.apply(received("r1", STENT, 100), transferred("t1", STENT, 30, source=CENTRAL, target=OR))
        assert (level(engine, STENT, CENTRAL), level(engine, STENT, OR)) == (70, 30)

    def test_consumption_and_disposal_take_stock_away(self, engine: Engine, feed: Feed) -> None:
        """Consumption and disposal decrement the place they happen at."""
        feed.apply(
            received("r1", STENT, 100),
            consumed("c1", STENT, 3, place=CENTRAL),
            disposed("d1", STENT, 7, place=CENTRAL),
        )
        assert level(engine, STENT, CENTRAL) == 90

    def test_consumption_at_a_point_of_use_books_the_department_stock(
        self, engine: Engine, feed: Feed
    ) -> None:
        """A scan at a theatre (location text) takes from the department's stock and records the spot."""
        theatre = LocationRef(department=OR.department, location="OR-01")
        feed.apply(transferred("t1", STENT, 10), consumed("c1", STENT, 1, place=theatre))
        assert (level(engine, STENT, OR), level(engine, STENT, theatre)) == (9, None)
        with engine.connect() as conn:
            spot = conn.execute(
                select(movements.c.point_of_use).where(movements.c.kind == "consumed")
            ).scalar()
        assert spot == "OR-01"

    def test_consumption_stays_at_its_location_when_configured_so(self, engine: Engine) -> None:
        """With consumption_at_department off, the location text is a stock place of its own."""
        bin_a = LocationRef(department=CENTRAL.department, location="A-01")
        feed = Feed(engine, Inventory(InventoryConfig(consumption_at_department=False)))
        feed.apply(received("r1", STENT, 10, place=bin_a), consumed("c1", STENT, 4, place=bin_a))
        assert (level(engine, STENT, bin_a), level(engine, STENT, CENTRAL)) == (6, None)

    def test_a_department_known_by_name_only_is_keyed_by_name(self, engine: Engine, feed: Feed) -> None:
        """Without a code, the department name keys the place."""
        ward = LocationRef.model_validate({"department": {"name": "骨科病区"}})
        feed.apply(received("r1", STENT, 5, place=ward))
        assert position(engine, STENT, ward)["location_key"] == "骨科病区|"

    def test_consumption_before_its_receipt_arrives_settles_to_the_same_level(
        self, engine: Engine, feed: Feed
    ) -> None:
        """Out of order across files: a scan applied before the receipt goes negative, then lands right."""
        feed.apply(transferred("t1", STENT, 10, when=at(2)), consumed("c1", STENT, 2, when=at(3)))
        assert level(engine, STENT, CENTRAL) == -10
        feed.apply(received("r1", STENT, 50, when=at(1)))
        assert (level(engine, STENT, CENTRAL), level(engine, STENT, OR)) == (40, 8)

    def test_lot_and_expiry_from_the_barcode_when_the_row_has_none(self, engine: Engine, feed: Feed) -> None:
        """A receipt without a lot column takes lot and expiry from its GS1 label."""
        label = gs1(STENT_GTIN, lot="B7", expiry=at(24 * 400).date())
        feed.apply(received("r1", STENT, 5, lot=None, barcode=label))
        assert level(engine, STENT, CENTRAL, "B7") == 5


class TestStocktake:
    def test_a_count_sets_the_level(self, engine: Engine, feed: Feed) -> None:
        """A stocktake's counted quantity replaces the book level."""
        feed.apply(
            received("r1", STENT, 100, when=at(0)), consumed("c1", STENT, 10, place=CENTRAL, when=at(1))
        )
        feed.apply(counted("k1", STENT, 80, when=at(2)))
        assert level(engine, STENT, CENTRAL) == 80

    def test_movements_after_the_count_apply_on_top(self, engine: Engine, feed: Feed) -> None:
        """What happens after the count moves the level from the counted quantity."""
        feed.apply(received("r1", STENT, 100, when=at(0)), counted("k1", STENT, 80, when=at(2)))
        feed.apply(consumed("c1", STENT, 5, place=CENTRAL, when=at(3)))
        assert level(engine, STENT, CENTRAL) == 75

    def test_a_late_consumption_before_the_count_is_not_counted_twice(
        self, engine: Engine, feed: Feed
    ) -> None:
        """A scan at T-1 arriving after a count at T is already in the count: the level stays."""
        feed.apply(received("r1", STENT, 100, when=at(0)), counted("k1", STENT, 90, when=at(2)))
        feed.apply(consumed("late", STENT, 10, place=CENTRAL, when=at(1)))
        assert level(engine, STENT, CENTRAL) == 90
        with engine.connect() as conn:
            kinds = sorted(conn.execute(select(movements.c.kind)).scalars())
        assert kinds == ["consumed", "counted", "received"]

    def test_a_movement_at_the_count_instant_is_part_of_the_count(self, engine: Engine, feed: Feed) -> None:
        """A count covers everything up to and including its own business time."""
        feed.apply(received("r1", STENT, 100, when=at(0)), counted("k1", STENT, 90, when=at(2)))
        feed.apply(consumed("same", STENT, 4, place=CENTRAL, when=at(2)))
        assert level(engine, STENT, CENTRAL) == 90

    def test_a_late_older_count_changes_nothing(self, engine: Engine, feed: Feed) -> None:
        """The level rests on the newest count; one taken earlier and arriving later is history."""
        feed.apply(
            received("r1", STENT, 100, when=at(0)),
            counted("k-new", STENT, 50, when=at(3)),
            consumed("c1", STENT, 5, place=CENTRAL, when=at(4)),
        )
        feed.apply(counted("k-old", STENT, 70, when=at(1)))
        assert level(engine, STENT, CENTRAL) == 45

    @pytest.mark.parametrize("same_batch", [True, False])
    def test_a_late_newer_count_rederives_from_the_ledger(
        self, engine: Engine, feed: Feed, same_batch: bool
    ) -> None:
        """A count arriving after later movements keeps those movements on top of it."""
        first = [received("r1", STENT, 100, when=at(0)), consumed("c1", STENT, 5, place=CENTRAL, when=at(3))]
        count = counted("k1", STENT, 60, when=at(2))
        if same_batch:
            feed.apply(*first, count)
        else:
            feed.apply(*first)
            feed.apply(count)
        assert level(engine, STENT, CENTRAL) == 55
        assert position(engine, STENT, CENTRAL)["on_hand"] == 55

    def test_a_count_of_zero_empties_the_lot(self, engine: Engine, feed: Feed) -> None:
        """A lot counted as zero has nothing on hand, and is no longer in stock."""
        feed.apply(received("r1", STENT, 10, when=at(0)), counted("k1", STENT, 0, when=at(1)))
        assert level(engine, STENT, CENTRAL) == 0


class TestUnits:
    def test_a_unit_follows_its_receipt_transfer_and_consumption(self, engine: Engine, feed: Feed) -> None:
        """A serialised unit records supplier and PO, moves with its transfer, and ends consumed."""
        feed.apply(
            received("r1", STENT, 2, serials=["S1", "S2"], supplier="供应商甲", po_number="PO-1", when=at(0)),
            transferred("t1", STENT, 1, serials=["S1"], when=at(1)),
            consumed("c1", STENT, serial="S1", patient_token="PT-9", procedure_code="36.06", when=at(2)),
        )
        s1, s2 = unit(engine, STENT, "S1"), unit(engine, STENT, "S2")
        assert (s1["status"], s1["department_code"], s1["supplier"], s1["po_number"]) == (
            "consumed",
            "0203",
            "供应商甲",
            "PO-1",
        )
        assert (s1["patient_token"], s1["procedure_code"], s1["lot"]) == ("PT-9", "36.06", "L1")
        assert (s2["status"], s2["department_code"]) == ("in_stock", "9001")

    def test_a_scan_naming_only_the_serial_takes_the_units_lot(self, engine: Engine, feed: Feed) -> None:
        """A consumption scan with a serial and no lot books against the lot the unit came in."""
        feed.apply(
            received("r1", STENT, 1, lot="L9", serials=["S1"]),
            transferred("t1", STENT, 1, lot=None, serials=["S1"]),
            consumed("c1", STENT, lot=None, barcode=gs1(STENT_GTIN, serial="S1")),
        )
        assert (level(engine, STENT, CENTRAL, "L9"), level(engine, STENT, OR, "L9")) == (0, 0)
        assert unit(engine, STENT, "S1")["status"] == "consumed"

    def test_the_serial_is_read_from_a_udi_text(self, engine: Engine, feed: Feed) -> None:
        """A HIS charge that carries only the UDI string still names the unit it consumed."""
        udi = f"(01){STENT_GTIN}(17)271231(10)L1(21)S7"
        feed.apply(
            received("r1", STENT, 1, serials=["S7"]), consumed("c1", STENT, place=CENTRAL, lot=None, udi=udi)
        )
        assert unit(engine, STENT, "S7")["status"] == "consumed"

    def test_a_late_transfer_does_not_revive_a_consumed_unit(self, engine: Engine, feed: Feed) -> None:
        """The unit's state is its latest event by business time, whatever the arrival order."""
        feed.apply(
            received("r1", STENT, 1, serials=["S1"], when=at(0)),
            consumed("c1", STENT, serial="S1", place=ICU, when=at(5)),
        )
        feed.apply(transferred("t1", STENT, 1, serials=["S1"], target=ICU, when=at(2)))
        s1 = unit(engine, STENT, "S1")
        assert (s1["status"], s1["department_code"]) == ("consumed", "0301")


class TestItemsAndThresholds:
    def test_the_latest_definition_wins_whatever_the_arrival_order(self, engine: Engine, feed: Feed) -> None:
        """A definition older than the stored one, arriving late, does not overwrite it."""
        feed.apply(defined("d2", STENT, name="新名称", gtin=STENT_GTIN, when=at(5)))
        feed.apply(defined("d1", STENT, name="旧名称", when=at(1)))
        with engine.connect() as conn:
            row = conn.execute(select(items).where(items.c.item_id == STENT)).mappings().one()
        assert (row["name"], row["gtin14"]) == ("新名称", STENT_GTIN)

    def test_the_latest_threshold_wins(self, engine: Engine, feed: Feed) -> None:
        """Thresholds follow the same rule: newest business time wins."""
        feed.apply(
            threshold("h2", STENT, CENTRAL, 10, 40, when=at(5)),
            threshold("h1", STENT, CENTRAL, 3, 9, when=at(1)),
        )
        row = position(engine, STENT, CENTRAL)
        assert (row["minimum"], row["maximum"]) == (Decimal(10), Decimal(40))
