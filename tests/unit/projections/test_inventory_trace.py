"""One item, one code: trace a unit or lot from any form of its code; recall a lot."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from decimal import Decimal

import pytest
from sqlalchemy import Engine

from projections.inventory.trace import recall, trace
from schemas.inventory import Barcode
from tests.unit.projections.test_inventory_factories import (
    BACKENDS,
    CENTRAL,
    GLOVES,
    ICU,
    OR,
    STAPLER,
    STENT,
    STENT_GTIN,
    Feed,
    at,
    consumed,
    defined,
    disposed,
    gs1,
    inventory_engine,
    received,
    shared_database,
    stent_master,
    transferred,
)

GLOVES_GTIN = "06947517459492"
STAPLER_GTIN = "06941818425699"
EXPIRY = date(2026, 12, 18)
THEATRE = OR.model_copy(update={"location": "OR-01"})
LINK = f"https://id.gs1.org/01/{STENT_GTIN}/10/L1/21/S2"


@pytest.fixture(scope="module", params=BACKENDS)
def engine(request: pytest.FixtureRequest) -> Iterator[Engine]:
    """A hospital's quarter: stents by serial, a stapler sharing serial S1, gloves by lot (read only)."""
    with shared_database(request) as url:
        yield from _scenario(url)


@pytest.fixture
def own_engine(db_url: str) -> Iterator[Engine]:
    """The same quarter in a database of the test's own, for tests that add events."""
    yield from _scenario(db_url)


def _scenario(url: str) -> Iterator[Engine]:
    for eng in inventory_engine(url):
        Feed(eng).apply(
            stent_master(),
            defined("def-stapler", STAPLER, name="管型吻合器", gtin=STAPLER_GTIN, high_value=True),
            defined("def-gloves", GLOVES, name="检查手套", gtin=GLOVES_GTIN),
            received(
                "r-stent", STENT, 4, lot="L1", expiry=EXPIRY, serials=["S1", "S2", "S3", "S4"],
                supplier="华东医疗", po_number="PO-7", barcode=gs1(STENT_GTIN, lot="L1"), when=at(0),
            ),
            transferred("t-stent", STENT, 2, serials=["S1", "S2"], when=at(24)),
            consumed(
                "c-s1", STENT, place=THEATRE, serial="S1", barcode=gs1(STENT_GTIN, lot="L1", serial="S1"),
                patient_token="PT-1", procedure_code="36.06", when=at(48),
            ),
            consumed("c-s2", STENT, lot=None, udi=LINK, patient_token="PT-2", system="his", when=at(50)),
            disposed("d-s3", STENT, 1, serials=["S3"], when=at(60)),
            received(
                "r-stapler", STAPLER, 1, lot="L1", serials=["S1"],
                barcode=Barcode(raw="GYS-XYZ-1", parse_error="not GS1"), when=at(1),
            ),
            received("r-gloves", GLOVES, 500, lot="G1", barcode=gs1(GLOVES_GTIN, lot="G1"), when=at(2)),
            transferred("t-gloves", GLOVES, 100, lot="G1", target=ICU, when=at(30)),
            consumed("c-gloves", GLOVES, 20, lot="G1", place=ICU, when=at(40)),
        )  # fmt: skip
        yield eng


def traced(engine: Engine, code: str) -> dict | None:
    with engine.connect() as conn:
        return trace(conn, code)


def units_of(found: dict | None) -> list[tuple[str, str]]:
    assert found is not None
    return [(u["item_id"], u["serial"]) for u in found["units"]]


class TestTrace:
    def test_a_serial_gives_the_units_whole_path(self, engine: Engine) -> None:
        """Received (supplier, PO, place) -> transferred (to which department) -> consumed (patient)."""
        found = traced(engine, "S2")
        (unit,) = found["units"]
        steps = [(s["kind"], s["department_name"]) for s in unit["steps"]]
        assert steps == [("received", "中心库房"), ("transferred", "手术室"), ("consumed", "手术室")]
        received_step, moved, used = unit["steps"]
        assert (received_step["supplier"], received_step["po_number"], received_step["occurred_at"]) == (
            "华东医疗",
            "PO-7",
            at(0),
        )
        assert (moved["from_department_name"], moved["occurred_at"]) == ("中心库房", at(24))
        assert (used["patient_token"], used["source_system"], unit["status"], unit["expiry"]) == (
            "PT-2",
            "his",
            "consumed",
            EXPIRY,
        )

    def test_a_serial_two_products_share_matches_both(self, engine: Engine) -> None:
        """A bare serial cannot tell the stent from the stapler: both units come back."""
        assert units_of(traced(engine, "S1")) == [(STAPLER, "S1"), (STENT, "S1")]

    @pytest.mark.parametrize(
        "code",
        [
            f"(01){STENT_GTIN}(17)261218(10)L1(21)S1",
            f"{{01}}{STENT_GTIN}{{10}}L1{{21}}S1",
            f"]d201{STENT_GTIN}10L1\x1d21S1",
            f"01{STENT_GTIN}10L1<GS>21S1",
            f"https://id.gs1.org/01/{STENT_GTIN}/10/L1/21/S1?17=261218",
        ],
    )
    def test_a_gs1_code_in_any_form_names_the_unit(self, engine: Engine, code: str) -> None:
        """Human-readable, element string (GS or stand-in, symbology id) or Digital Link: GTIN narrows."""
        found = traced(engine, code)
        assert units_of(found) == [(STENT, "S1")]
        assert (found["gtin"], found["lot"], found["serial"]) == (STENT_GTIN, "L1", "S1")

    def test_the_consumed_unit_shows_where_it_was_used(self, engine: Engine) -> None:
        """The theatre scan keeps the point of use, the procedure and the patient token."""
        (unit,) = traced(engine, f"(01){STENT_GTIN}(10)L1(21)S1")["units"]
        used = unit["steps"][-1]
        assert (used["point_of_use"], used["procedure_code"], used["patient_token"]) == (
            "OR-01",
            "36.06",
            "PT-1",
        )

    def test_a_udi_text_seen_on_a_scan_matches_verbatim(self, engine: Engine) -> None:
        """The exact UDI string a HIS charge carried finds its unit."""
        assert units_of(traced(engine, LINK)) == [(STENT, "S2")]

    def test_a_private_label_seen_on_a_receipt_matches_verbatim(self, engine: Engine) -> None:
        """A supplier's code no GS1 parser reads still leads to the unit it was stuck on."""
        assert units_of(traced(engine, "GYS-XYZ-1")) == [(STAPLER, "S1")]

    def test_a_gtin_no_item_carries_does_not_hide_the_serial(self, engine: Engine) -> None:
        """Narrowing by GTIN only applies when some item has it (the master may not have arrived)."""
        assert units_of(traced(engine, "(01)06901234567892(21)S1")) == [(STAPLER, "S1"), (STENT, "S1")]

    def test_a_lot_code_traces_a_lot_tracked_item(self, engine: Engine) -> None:
        """GTIN + lot without a serial: the lot's ledger (transfers as one step) and what is left where."""
        found = traced(engine, f"(01){GLOVES_GTIN}(10)G1")
        assert found["units"] == []
        (lot,) = found["lots"]
        steps = [
            (s["kind"], s["quantity"], s["from_department_name"], s["department_name"]) for s in lot["steps"]
        ]
        assert steps == [
            ("received", Decimal(500), None, "中心库房"),
            ("transferred", Decimal(100), "中心库房", "重症医学科"),
            ("consumed", Decimal(20), None, "重症医学科"),
        ]
        assert [(p["department_name"], p["on_hand"]) for p in lot["on_hand"]] == [
            ("重症医学科", Decimal(80)),
            ("中心库房", Decimal(400)),
        ]

    @pytest.mark.parametrize("code", ["NOPE-1", f"(01){GLOVES_GTIN}", "", "]d"])
    def test_nothing_matches(self, engine: Engine, code: str) -> None:
        """Unknown serials, a bare GTIN (a product, not a unit) and junk give None."""
        assert traced(engine, code) is None


class TestRecall:
    def test_lists_units_on_hand_consumed_with_patients_and_disposed(self, engine: Engine) -> None:
        """A recalled lot: what is still on the shelves (where, serials), which patients got it, what went."""
        with engine.connect() as conn:
            found = recall(conn, lot="L1", gtin=STENT_GTIN)
        assert [(r["department_name"], r["on_hand"], r["serials"]) for r in found["on_hand"]] == [
            ("中心库房", Decimal(1), ["S4"])
        ]
        used = [
            (r["serials"], r["patient_token"], r["department_name"], r["occurred_at"])
            for r in found["consumed"]
        ]
        assert used == [("S1", "PT-1", "手术室", at(48)), ("S2", "PT-2", "手术室", at(50))]
        assert [(r["serials"], r["quantity"]) for r in found["disposed"]] == [("S3", Decimal(1))]
        assert (found["on_hand_total"], found["consumed_total"], found["disposed_total"]) == (1, 2, 1)

    def test_without_a_gtin_every_item_with_the_lot_is_listed(self, engine: Engine) -> None:
        """Lot numbers are per manufacturer: unnarrowed, the stapler's lot L1 is listed too."""
        with engine.connect() as conn:
            found = recall(conn, lot="L1")
        assert sorted((r["item_id"], r["on_hand"]) for r in found["on_hand"]) == [
            (STAPLER, Decimal(1)),
            (STENT, Decimal(1)),
        ]

    def test_narrowed_by_item_code(self, engine: Engine) -> None:
        """`item` takes the source's item code as well as the hub id."""
        with engine.connect() as conn:
            found = recall(conn, lot="L1", item="STAPLER")
        assert [r["item_id"] for r in found["on_hand"]] == [STAPLER]
        assert found["consumed"] == []

    def test_a_unit_consumed_before_its_receipt_arrived_is_listed(self, own_engine: Engine) -> None:
        """A scan naming only the serial, booked before the receipt told its lot, still shows in the recall."""
        engine = own_engine
        feed = Feed(engine)
        feed.offset = 1000
        feed.apply(
            consumed("c-s5", STENT, place=CENTRAL, lot=None, serial="S5", patient_token="PT-5", when=at(70))
        )
        feed.apply(received("r-s5", STENT, 1, lot="M1", serials=["S5"], when=at(10)))
        with engine.connect() as conn:
            found = recall(conn, lot="M1")
        assert [(r["serials"], r["patient_token"]) for r in found["consumed"]] == [("S5", "PT-5")]
