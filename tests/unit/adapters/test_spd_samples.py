"""The SPD sample exports: what each yields, its documented bad rows, and the stories in the data."""

from __future__ import annotations

import subprocess
import sys
from collections import Counter, defaultdict
from decimal import Decimal
from typing import TYPE_CHECKING

import pytest

from schemas.ids import item_id_for
from schemas.inventory import (
    InventoryAdjusted,
    InventoryConsumed,
    InventoryDisposed,
    InventoryReceived,
    InventoryThresholdSet,
    InventoryTransferred,
)
from tests.unit.adapters._spd import (
    DISPOSALS,
    DISTRIBUTIONS,
    EXAMPLES,
    MASTER,
    RECEIPTS,
    SAMPLES,
    SCANS,
    STOCKTAKE,
    THRESHOLDS,
    run,
)

if TYPE_CHECKING:
    from pathlib import Path

    from adapters.base import Translation

EXPECTED = {
    MASTER.name: ({"inventory.item_defined": 118}, 1, ()),
    THRESHOLDS.name: ({"inventory.threshold_set": 237}, 0, ()),
    RECEIPTS.name: ({"inventory.received": 222}, 1, ("line:226: summary row",)),
    DISTRIBUTIONS.name: ({"inventory.transferred": 179}, 1, ("line:182: footer note",)),
    SCANS.name: ({"inventory.consumed": 166}, 1, ()),
    DISPOSALS.name: ({"inventory.disposed": 3}, 0, ()),
    STOCKTAKE.name: ({"inventory.adjusted": 26}, 0, ()),
}


@pytest.fixture(scope="module")
def results() -> dict[str, Translation]:
    return {path.name: run(path.read_bytes(), path.name) for path in SAMPLES}


class TestSampleExports:
    @pytest.mark.parametrize("name", list(EXPECTED))
    def test_counts(self, results: dict[str, Translation], name: str) -> None:
        """Each sample yields its documented events, failures and skipped rows (examples/spd/README.md)."""
        result = results[name]
        events, failures, skipped = EXPECTED[name]
        assert Counter(e.event.type for e in result.events) == events
        assert (len(result.failures), result.skipped) == (failures, skipped)
        assert result.units == sum(events.values()) + failures + len(skipped)

    def test_bad_rows_fail_where_the_readme_says(self, results: dict[str, Translation]) -> None:
        """The four deliberately bad rows fail at their documented file, line, column and code."""
        got = [
            (f.location.file, f.location.line, f.location.column, f.code)
            for path in SAMPLES
            for f in results[path.name].failures
        ]
        assert got == [
            (MASTER.name, 60, "高值耗材", "unknown_high_value"),
            (RECEIPTS.name, 97, "条码", "barcode_mismatch"),
            (DISTRIBUTIONS.name, 32, "领用科室", "unknown_department"),
            (SCANS.name, 42, "消耗时间", "invalid_date"),
        ]

    def test_barcode_forms_in_the_receipts(self, results: dict[str, Translation]) -> None:
        """Receipts hold GS1 codes, one Digital Link and one private code that lands flagged."""
        barcodes = [e.event.payload.barcode for e in results[RECEIPTS.name].events if e.event.payload.barcode]
        kinds = Counter(b.symbology for b in barcodes)
        assert (kinds["gs1_digital_link"], kinds["unknown"]) == (1, 1)
        assert kinds["gs1"] > 100
        assert sum("\x1d" in b.raw for b in barcodes) >= 20
        flagged = next(b for b in barcodes if b.symbology == "unknown")
        assert (flagged.raw, flagged.parse_error is not None) == ("GYS-GZ11001-2404D841", True)

    def test_no_in_patient_number_leaves_the_adapter(self, results: dict[str, Translation]) -> None:
        """The scans' 住院号 column appears in no event and no failure excerpt."""
        dumped = "".join(e.event.model_dump_json() for e in results[SCANS.name].events)
        excerpts = "".join(str(f.excerpt) for f in results[SCANS.name].failures)
        assert "ZY" not in dumped
        assert "ZY" not in excerpts

    def test_item_master_covers_high_value_implants(self, results: dict[str, Translation]) -> None:
        """The master defines high-value implants with GTINs and everyday consumables."""
        items = [e.event.payload for e in results[MASTER.name].events]
        high = [i for i in items if i.high_value]
        assert len(high) == 37
        assert all(i.gtin for i in high)
        names = {i.name for i in items}
        assert {
            "药物洗脱冠脉支架",
            "人工髋关节",
            "管型吻合器",
            "静脉留置针",
            "一次性使用输液器",
            "医用外科口罩",
        } <= names


def _stock(
    results: dict[str, Translation],
) -> tuple[dict[tuple[str, str], Decimal], dict[tuple[str, str], Decimal]]:
    """Fold the samples' events into stock and minimum per (item id, department code)."""
    lots: dict[tuple[str, str, str | None], Decimal] = defaultdict(Decimal)
    minimum: dict[tuple[str, str], Decimal] = {}
    for path in SAMPLES:
        for emitted in results[path.name].events:
            event, item = emitted.event, emitted.event.subject
            match event:
                case InventoryThresholdSet(payload=p):
                    minimum[(item, str(p.location.department.code))] = p.minimum
                case InventoryReceived(payload=p):
                    lots[(item, str(p.location.department.code), p.lot)] += p.quantity
                case InventoryTransferred(payload=p):
                    lots[(item, str(p.from_location.department.code), p.lot)] -= p.quantity
                    lots[(item, str(p.to_location.department.code), p.lot)] += p.quantity
                case InventoryConsumed(payload=p) | InventoryDisposed(payload=p):
                    lots[(item, str(p.location.department.code), p.lot)] -= p.quantity
                case InventoryAdjusted(payload=p):
                    lots[(item, str(p.location.department.code), p.lot)] = p.counted_quantity
    stock: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
    for (item, place, _), quantity in lots.items():
        stock[(item, place)] += quantity
    return stock, minimum


class TestStories:
    @pytest.mark.parametrize(
        ("place", "code", "on_hand", "minimum"),
        [
            ("9001", "DZ04001", 3840, 5760),
            ("0203", "GZ07002", 5, 7),
            ("0204", "GZ01003", 1, 3),
            ("0101", "DZ01003", 20, 30),
            ("9001", "DZ02001", 3080, 2926),
            ("0601", "GZ04002", 1, 1),
        ],
    )
    def test_documented_items_end_below_or_near_minimum(
        self, results: dict[str, Translation], place: str, code: str, on_hand: int, minimum: int
    ) -> None:
        """Folding every sample event leaves the README's items at their documented stock and minimum."""
        stock, minimums = _stock(results)
        key = (item_id_for("spd", code), place)
        assert (stock[key], minimums[key]) == (on_hand, minimum)

    def test_no_stock_goes_negative(self, results: dict[str, Translation]) -> None:
        """The files agree with each other: no item ends with less than nothing anywhere."""
        stock, _ = _stock(results)
        assert min(stock.values()) >= 0

    def test_recalled_lot_is_partly_consumed_partly_on_hand(self, results: dict[str, Translation]) -> None:
        """Lot 2404R007: 7 consumed with serials, 5 returned as recalled, 8 still on hand."""
        consumed = [
            e.event.payload.serial for e in results[SCANS.name].events if e.event.payload.lot == "2404R007"
        ]
        recalled = [
            e.event.payload for e in results[DISPOSALS.name].events if e.event.payload.lot == "2404R007"
        ]
        assert len(consumed) == 7
        assert all(s is not None and s.startswith("ST24R") for s in consumed)
        assert [(d.reason, d.quantity, len(d.serials)) for d in recalled] == [("recalled", 5, 5)]

    def test_expired_lot_is_disposed_as_expired(self, results: dict[str, Translation]) -> None:
        """The 22G lot that expired in May is disposed of whole, as expired."""
        disposed = [
            e.event.payload for e in results[DISPOSALS.name].events if e.event.payload.lot == "2311C417"
        ]
        assert [(d.reason, d.quantity) for d in disposed] == [("expired", 200)]


def test_generator_reproduces_the_committed_samples(tmp_path: Path) -> None:
    """Running examples/generate_spd.py again yields byte-identical sample files."""
    script = EXAMPLES.parent / "generate_spd.py"
    subprocess.run([sys.executable, str(script), str(tmp_path)], check=True, capture_output=True)
    for path in SAMPLES:
        assert (tmp_path / path.name).read_bytes() == path.read_bytes(), path.name
