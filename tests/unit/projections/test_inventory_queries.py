"""Inventory queries: stock filters and pages, distribution, expiring lots, the item master."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import Engine

from projections.inventory.queries import distribution, expiring, get_item, list_items, list_stock
from tests.unit.projections.test_inventory_factories import (
    BACKENDS,
    CENTRAL,
    GLOVES,
    ICU,
    STAPLER,
    STENT,
    STENT_GTIN,
    WARD,
    Feed,
    at,
    consumed,
    defined,
    inventory_engine,
    received,
    shared_database,
    stent_master,
    threshold,
    transferred,
)

AS_OF = date(2024, 6, 1)


@pytest.fixture(scope="module", params=BACKENDS)
def engine(request: pytest.FixtureRequest) -> Iterator[Engine]:
    """Stents by serial, gloves in two lots (one expired), an emptied stapler lot, ICU gloves below minimum."""
    with shared_database(request) as url:
        for eng in inventory_engine(url):
            Feed(eng).apply(
                stent_master(),
                defined("def-gloves", GLOVES, name="一次性医用检查手套", category="防护用品", gtin="6947517459492"),
                defined("def-stapler", STAPLER, name="管型吻合器", high_value=True),
                threshold("h-icu", GLOVES, ICU, 50, 200, when=at(0)),
                received("r-stent", STENT, 4, lot="L1", expiry=date(2024, 6, 10), serials=["S1", "S2", "S3", "S4"]),
                received("r-g1", GLOVES, 500, lot="G1", expiry=date(2025, 1, 1)),
                received("r-g2", GLOVES, 100, lot="G2", expiry=date(2024, 5, 20)),
                received("r-stapler", STAPLER, 2, lot="K1"),
                transferred("t-g1", GLOVES, 100, lot="G1", target=ICU, when=at(1)),
                transferred("t-stent", STENT, 1, lot="L1", serials=["S1"], target=WARD, when=at(1)),
                consumed("c-g1", GLOVES, 60, lot="G1", place=ICU, when=at(2)),
                consumed("c-stapler", STAPLER, 2, lot="K1", place=CENTRAL, when=at(2)),
            )  # fmt: skip
            yield eng


def stock(engine: Engine, **filters: Any) -> tuple[list[tuple[str, str | None, str | None, Decimal]], int]:
    with engine.connect() as conn:
        rows, total = list_stock(conn, **filters)
    return [(r["item_id"], r["department_name"], r["lot"], r["on_hand"]) for r in rows], total


class TestStock:
    def test_lists_rows_with_stock_in_key_order(self, engine: Engine) -> None:
        """By default: every item × place × lot with something on hand, ordered by item then place then lot."""
        rows, total = stock(engine)
        assert rows == [
            (GLOVES, "重症医学科", "G1", Decimal(40)),
            (GLOVES, "中心库房", "G1", Decimal(400)),
            (GLOVES, "中心库房", "G2", Decimal(100)),
            (STENT, "中心库房", "L1", Decimal(3)),
            (STENT, "骨科病区", "L1", Decimal(1)),
        ]
        assert total == 5

    def test_paginates(self, engine: Engine) -> None:
        """limit and offset select a window; the total stays the full count."""
        rows, total = stock(engine, limit=2, offset=2)
        assert ([r[2] for r in rows], total) == (["G2", "L1"], 5)

    def test_include_empty_lists_emptied_lots(self, engine: Engine) -> None:
        """A lot used up still has its row, listed on request."""
        rows, total = stock(engine, item=STAPLER, include_empty=True)
        assert (rows, total) == ([(STAPLER, "中心库房", "K1", Decimal(0))], 1)
        assert stock(engine, item=STAPLER) == ([], 0)

    @pytest.mark.parametrize(
        ("filters", "expected"),
        [
            ({"item": "GLOVES"}, [("G1", "重症医学科"), ("G1", "中心库房"), ("G2", "中心库房")]),
            ({"item": STENT}, [("L1", "中心库房"), ("L1", "骨科病区")]),
            ({"department": "0301"}, [("G1", "重症医学科")]),
            ({"department": "骨科病区"}, [("L1", "骨科病区")]),
            ({"lot": "G2"}, [("G2", "中心库房")]),
            ({"high_value": True}, [("L1", "中心库房"), ("L1", "骨科病区")]),
            ({"below_minimum": True}, [("G1", "重症医学科")]),
            ({"below_minimum": False, "item": GLOVES}, [("G1", "中心库房"), ("G2", "中心库房")]),
            ({"department": "9001", "high_value": False}, [("G1", "中心库房"), ("G2", "中心库房")]),
            ({"location": "nowhere"}, []),
        ],
    )
    def test_filters(self, engine: Engine, filters: dict[str, Any], expected: list[tuple[str, str]]) -> None:
        """Item (id or code), department (code or name), place text, lot, high value, below minimum."""
        rows, total = stock(engine, **filters)
        assert ([(lot, dept) for _, dept, lot, _ in rows], total) == (expected, len(expected))

    def test_rows_carry_the_item_and_the_lots_expiry(self, engine: Engine) -> None:
        """Each row names the item from the master and the lot's expiry, and says whether it is below."""
        with engine.connect() as conn:
            (row,), _ = list_stock(conn, department="0301")
        assert (row["item_name"], row["expiry"], row["below_minimum"], row["item_code"]) == (
            "一次性医用检查手套",
            date(2025, 1, 1),
            True,
            "GLOVES",
        )


class TestDistribution:
    def test_sums_an_item_per_department_most_first(self, engine: Engine) -> None:
        """Every department holding the item, with its total over lots and places below minimum."""
        with engine.connect() as conn:
            rows = distribution(conn, "GLOVES")
        assert [
            (r["department_name"], r["on_hand"], r["places"], r["places_below_minimum"]) for r in rows
        ] == [
            ("中心库房", Decimal(500), 1, 0),
            ("重症医学科", Decimal(40), 1, 1),
        ]

    def test_an_unknown_item_has_no_distribution(self, engine: Engine) -> None:
        """Nothing held, nothing listed."""
        with engine.connect() as conn:
            assert distribution(conn, "ITM-none") == []


class TestExpiring:
    def test_lists_lots_expiring_within_the_window_expired_first(self, engine: Engine) -> None:
        """Relative to as_of: the expired lot (negative days left), then the one due within the window."""
        with engine.connect() as conn:
            rows, total = expiring(conn, as_of=AS_OF, within_days=30)
        listed = [(r["lot"], r["department_name"], r["days_left"], r["expired"]) for r in rows]
        assert listed == [
            ("G2", "中心库房", -12, True),
            ("L1", "中心库房", 9, False),
            ("L1", "骨科病区", 9, False),
        ]
        assert total == 3

    def test_a_shorter_window_leaves_later_lots_out(self, engine: Engine) -> None:
        """A lot expiring after as_of + within is not listed."""
        with engine.connect() as conn:
            rows, _ = expiring(conn, as_of=AS_OF, within_days=5)
        assert [r["lot"] for r in rows] == ["G2"]

    def test_filters_by_department(self, engine: Engine) -> None:
        """Department narrows the list like the stock list does."""
        with engine.connect() as conn:
            rows, total = expiring(conn, as_of=AS_OF, within_days=365, department="重症医学科")
        assert ([r["lot"] for r in rows], total) == (["G1"], 1)


class TestItems:
    @pytest.mark.parametrize(
        ("filters", "expected"),
        [
            ({}, [GLOVES, STAPLER, STENT]),
            ({"q": "手套"}, [GLOVES]),
            ({"q": "stent"}, [STENT]),
            ({"high_value": True}, [STAPLER, STENT]),
            ({"category": "防护用品"}, [GLOVES]),
            ({"gtin": "06947517459492"}, [GLOVES]),
            ({"gtin": STENT_GTIN.lstrip("0")}, [STENT]),
        ],
    )
    def test_lists_and_filters_the_master(
        self, engine: Engine, filters: dict[str, Any], expected: list[str]
    ) -> None:
        """Name or code substring, high value, category, and GTIN in any length."""
        with engine.connect() as conn:
            rows, total = list_items(conn, **filters)
        assert ([r["item_id"] for r in rows], total) == (expected, len(expected))

    def test_one_item_with_its_places(self, engine: Engine) -> None:
        """An item comes with its stock and thresholds per place and its total."""
        with engine.connect() as conn:
            item = get_item(conn, GLOVES)
        assert item is not None
        places = [(p["department_name"], p["on_hand"], p["minimum"], p["below"]) for p in item["positions"]]
        assert places == [
            ("重症医学科", Decimal(40), Decimal(50), True),
            ("中心库房", Decimal(500), None, False),
        ]
        assert item["on_hand"] == Decimal(540)

    def test_an_unknown_item_is_none(self, engine: Engine) -> None:
        """No definition, no item."""
        with engine.connect() as conn:
            assert get_item(conn, "ITM-none") is None
