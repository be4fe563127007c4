"""Item code and name on SPD movement rows reach the item catalogue with no item-master export:
each bundled movement export (receipts, distribution, consumption scans in XLSX, losses, a
stocktake), translated and applied alone, defines every item it names, flagged provisional."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from projections.inventory.queries import get_item
from tests.unit.adapters._spd import run
from tests.unit.projections.test_inventory_factories import Feed, inventory_engine

if TYPE_CHECKING:
    from sqlalchemy import Engine

SPD = Path(__file__).resolve().parents[3] / "examples" / "spd"
MOVEMENTS = ["03_入库单_2024Q2.csv", "04_出库配送单_2024Q2.csv", "05_消耗扫码_2024-06.xlsx",
             "06_报损报废单_2024-06.csv", "07_盘点单_2024-06-28.csv"]  # fmt: skip


@pytest.fixture
def engine(tmp_path: Path) -> Engine:
    return next(inventory_engine(f"sqlite:///{tmp_path / 'inv.db'}"))


@pytest.mark.parametrize("name", MOVEMENTS)
def test_every_item_a_movement_export_names_is_in_the_catalogue(engine: Engine, name: str) -> None:
    path = SPD / name
    events = [e.event for e in run(path.read_bytes(), path.name).events]
    assert events
    Feed(engine).apply(*events)
    named = {e.subject: e.payload for e in events}  # type: ignore[attr-defined]
    with engine.connect() as conn:
        for item_id, payload in named.items():
            found = get_item(conn, item_id)
            assert found is not None, f"{name}: {payload.item_code} not in the catalogue"
            assert found["item_code"] == payload.item_code
            assert found["name"] is not None
            assert found["provisional"] is True  # first seen in a movement, no item master
