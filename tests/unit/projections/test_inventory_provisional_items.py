"""An item named only by a movement (a HIS charge's FT1-7 on `inventory.consumed`) is in the
catalogue, flagged provisional, until an item master defines it; it never replaces a master's
definition."""

from __future__ import annotations

from typing import TYPE_CHECKING

from projections.inventory.queries import get_item
from tests.unit.projections.test_inventory_factories import (
    GLOVES,
    Feed,
    at,
    consumed,
    defined,
    inventory_engine,
)

if TYPE_CHECKING:
    from pathlib import Path


def item(tmp_path: Path, *events: object) -> dict:
    for engine in inventory_engine(f"sqlite:///{tmp_path / 'inv.db'}"):
        Feed(engine).apply(*events)
        with engine.connect() as conn:
            found = get_item(conn, GLOVES)
        assert found is not None
        return dict(found)
    raise AssertionError("no engine")


def charge(label: str, name: str, hours: float) -> object:
    return consumed(
        label, GLOVES, 1, lot="G1", when=at(hours), system="his", item_code="HC0031", item_name=name
    )


def test_a_charge_defines_an_item_nobody_defined(tmp_path: Path) -> None:
    row = item(tmp_path, charge("c1", "检查手套(收费)", 1))
    assert (row["item_code"], row["name"], row["defined_at"]) == ("HC0031", "检查手套(收费)", None)


def test_a_charge_never_replaces_the_master(tmp_path: Path) -> None:
    row = item(
        tmp_path,
        defined("m1", GLOVES, name="一次性医用检查手套", spec="M", when=at(0)),
        charge("c1", "检查手套(收费)", 5),
    )
    assert (row["name"], row["spec"], row["defined_at"]) == ("一次性医用检查手套", "M", at(0))


def test_the_master_replaces_a_charge_whatever_its_date(tmp_path: Path) -> None:
    row = item(
        tmp_path,
        charge("c1", "检查手套(收费)", 5),
        defined("m1", GLOVES, name="一次性医用检查手套", spec="M", when=at(0)),
    )
    assert (row["name"], row["spec"], row["defined_at"]) == ("一次性医用检查手套", "M", at(0))
