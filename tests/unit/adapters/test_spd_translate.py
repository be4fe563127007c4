"""SPD translation: each document kind's fields, recognition, barcodes, failures, event ids."""

from __future__ import annotations

import io
import zipfile
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import TYPE_CHECKING

import pytest

from adapters.errors import MalformedMessage
from adapters.spd import ADAPTER
from adapters.spd.mapping import SpdMapping, load_spd_mapping
from schemas._base import DeptRef, LocationRef, Money, SourceSystem
from schemas.ids import event_id_for, item_id_for
from schemas.inventory import (
    InventoryAdjusted,
    InventoryConsumed,
    InventoryDisposed,
    InventoryItemDefined,
    InventoryReceived,
    InventoryThresholdSet,
    InventoryTransferred,
)
from tests.unit.adapters._spd import GTIN, RECEIVED, run, table

if TYPE_CHECKING:
    from pathlib import Path

    from adapters.base import Translation

CENTRAL = LocationRef(department=DeptRef(code="9001", name="中心库房"))
MASTER_HEADER = [
    "物资编码",
    "物资名称",
    "规格型号",
    "单位",
    "商品条码(GTIN)",
    "UDI-DI(产品标识)",
    "高值耗材",
    "分类",
    "供应商",
    "单价(元)",
]
RECEIPT_HEADER = [
    "入库单号",
    "入库日期",
    "物资编码",
    "物资名称",
    "批号",
    "有效期",
    "序列号",
    "数量",
    "单价",
    "供应商",
    "采购订单号",
    "条码",
]
SCAN_HEADER = ["计费单号", "消耗时间", "消耗科室", "使用位置", "住院号", "物资编码", "批号", "序列号", "条码"]


def only(result: Translation):
    assert not result.failures, [f.reason for f in result.failures]
    assert len(result.events) == 1
    return result.events[0].event


def receipt(*cells: str, **changes: str) -> list[str]:
    row = dict(
        zip(
            RECEIPT_HEADER,
            cells
            or (
                "RK1",
                "2024-06-03",
                "GZ01",
                "冠脉支架",
                "L1",
                "2026-12-31",
                "S1;S2",
                "2",
                "690",
                "华东",
                "PO9",
                "",
            ),
            strict=True,
        )
    )
    row.update(changes)
    return [row[h] for h in RECEIPT_HEADER]


class TestItemMaster:
    def test_documented_fields(self) -> None:
        """A master row gives code, name, spec, unit, GTIN-14, UDI-DI, flag, category, supplier and price."""
        row = [
            "GZ01",
            "冠脉支架",
            "3.0*18mm",
            "个",
            "6901234567892",
            GTIN,
            "是",
            "血管介入类",
            "华东",
            "690.00",
        ]
        event = only(run(table(MASTER_HEADER, row)))
        assert isinstance(event, InventoryItemDefined)
        assert event.subject == item_id_for("spd", "GZ01")
        assert event.payload.model_dump() == {
            "item_code": "GZ01",
            "name": "冠脉支架",
            "spec": "3.0*18mm",
            "unit": "个",
            "gtin": GTIN,
            "udi_di": GTIN,
            "high_value": True,
            "category": "血管介入类",
            "supplier": "华东",
            "price": {"amount": Decimal("690.00"), "currency": "CNY"},
        }
        assert event.occurred_at == RECEIVED  # a master has no business date: the export's receipt time

    def test_gs1_udi_di_fills_the_gtin(self) -> None:
        """An item with only a GS1 UDI-DI (产品标识) gets it as its GTIN too."""
        event = only(run(table(MASTER_HEADER, ["GZ01", "支架", "", "个", "", GTIN, "是", "", "", ""])))
        assert (event.payload.gtin, event.payload.udi_di) == (GTIN, GTIN)

    def test_other_agency_udi_di_is_kept_as_text(self) -> None:
        """A UDI-DI that is not a GTIN (another issuing agency) is kept, with no GTIN invented."""
        event = only(
            run(table(MASTER_HEADER, ["GZ01", "支架", "", "个", "", "MA.156.M0.100001", "是", "", "", ""]))
        )
        assert (event.payload.gtin, event.payload.udi_di) == (None, "MA.156.M0.100001")

    def test_missing_flag_means_not_high_value(self) -> None:
        """An empty 高值耗材 cell is the default: not high-value."""
        event = only(run(table(MASTER_HEADER, ["DZ01", "口罩", "", "个", "", "", "", "", "", ""])))
        assert event.payload.high_value is False

    def test_unknown_flag_fails_naming_the_word(self) -> None:
        """A flag word the mapping lacks fails the row, naming the word and the known ones."""
        result = run(table(MASTER_HEADER, ["DZ01", "口罩", "", "个", "", "", "待定", "", "", ""]))
        failure = result.failures[0]
        assert (failure.code, failure.location.column, failure.location.field) == (
            "unknown_high_value",
            "高值耗材",
            "high_value",
        )
        assert "'待定'" in failure.reason
        assert "是、否" in failure.reason

    def test_bad_gtin_check_digit_fails(self) -> None:
        """A GTIN with a wrong check digit fails the row on the GTIN column."""
        result = run(table(MASTER_HEADER, ["DZ01", "口罩", "", "个", "6901234567893", "", "否", "", "", ""]))
        assert (result.failures[0].code, result.failures[0].location.column) == (
            "invalid_gtin",
            "商品条码(GTIN)",
        )

    def test_second_definition_of_a_code_fails_naming_the_first(self) -> None:
        """The same item code twice in one master: the later row fails, naming the earlier line."""
        rows = [
            ["DZ01", "口罩", "", "个", "", "", "否", "", "", ""],
            ["DZ01", "口罩B", "", "个", "", "", "否", "", "", ""],
        ]
        result = run(table(MASTER_HEADER, *rows))
        assert len(result.events) == 1
        assert result.failures[0].code == "duplicate_key"
        assert "line 2" in result.failures[0].reason

    def test_item_definitions_are_the_snapshot_type(self) -> None:
        """Only the item master is re-sent whole: item_defined is the adapter's one snapshot type."""
        assert frozenset({"inventory.item_defined"}) == ADAPTER.snapshot_types


class TestThresholds:
    HEADER = ("库房/科室", "物资编码", "物资名称", "最低库存", "最高库存", "补货点")

    def test_documented_fields(self) -> None:
        """A threshold row gives the place (department code and name), minimum, maximum, reorder point."""
        event = only(run(table(self.HEADER, ["ICU", "DZ01", "留置针", "30", "90", "45"])))
        assert isinstance(event, InventoryThresholdSet)
        assert event.payload.location == LocationRef(department=DeptRef(code="0101", name="重症医学科"))
        assert (event.payload.minimum, event.payload.maximum, event.payload.reorder_point) == (
            Decimal(30),
            Decimal(90),
            Decimal(45),
        )

    def test_central_store_is_a_coded_place(self) -> None:
        """中心库房 resolves through the mapping's department list like any department."""
        assert (
            only(run(table(self.HEADER, ["中心库房", "DZ01", "留置针", "0", "0", ""]))).payload.location
            == CENTRAL
        )

    def test_minimum_above_maximum_fails(self) -> None:
        """A minimum above the maximum fails the row on the maximum column."""
        failure = run(table(self.HEADER, ["ICU", "DZ01", "留置针", "90", "30", ""])).failures[0]
        assert (failure.code, failure.location.column) == ("invalid_threshold", "最高库存")

    def test_unknown_department_fails_naming_it(self) -> None:
        """Stock limits for a place the mapping does not know fail, naming the place."""
        failure = run(table(self.HEADER, ["眼科", "DZ01", "留置针", "1", "3", ""])).failures[0]
        assert (failure.code, failure.location.column) == ("unknown_department", "库房/科室")
        assert "'眼科'" in failure.reason

    def test_same_item_and_place_twice_fails(self) -> None:
        """Two thresholds for one item at one place in one file: the later one fails."""
        rows = [
            ["ICU", "DZ01", "a", "1", "3", ""],
            ["重症医学科", "DZ01", "a", "2", "4", ""],
            ["急诊科", "DZ01", "a", "1", "3", ""],
        ]
        result = run(table(self.HEADER, *rows))
        assert [f.code for f in result.failures] == ["duplicate_key"]
        assert len(result.events) == 2


class TestReceipts:
    def test_documented_fields(self) -> None:
        """A receipt line gives place, quantity, lot, expiry, serials, supplier, PO, unit cost and barcode."""
        code = f"(01){GTIN}(17)261231(10)L1(21)S1"
        event = only(run(table(RECEIPT_HEADER, receipt(条码=code))))
        assert isinstance(event, InventoryReceived)
        payload = event.payload
        assert payload.location == CENTRAL  # no 库房 column: the mapping's default store
        assert (payload.quantity, payload.lot, payload.expiry, payload.serials) == (
            Decimal(2),
            "L1",
            date(2026, 12, 31),
            ["S1", "S2"],
        )
        assert (payload.supplier, payload.po_number, payload.unit_cost) == (
            "华东",
            "PO9",
            Money(amount=Decimal(690)),
        )
        assert payload.barcode is not None
        assert (payload.barcode.raw, payload.barcode.gtin, payload.barcode.serial) == (code, GTIN, "S1")
        assert event.occurred_at == datetime(2024, 6, 2, 16, tzinfo=UTC)  # 3 June, midnight in Shanghai

    @pytest.mark.parametrize("cell", ["S1;S2;S3", "S1、S2、S3", "S1,S2,S3", "S1；S2；S3", "S1; S2 ;S3"])
    def test_serials_split_on_any_separator(self, cell: str) -> None:
        """Several serials in one cell split on ; 、 , and their full-width forms."""
        event = only(run(table(RECEIPT_HEADER, receipt(序列号=cell, 数量="3"))))
        assert event.payload.serials == ["S1", "S2", "S3"]

    def test_serial_count_must_match_quantity(self) -> None:
        """Three serials for a quantity of two fail the row on the serial column."""
        failure = run(table(RECEIPT_HEADER, receipt(序列号="S1;S2;S3"))).failures[0]
        assert (failure.code, failure.location.column) == ("serial_count", "序列号")

    def test_unparseable_barcode_lands_flagged(self) -> None:
        """A code no GS1 parser reads does not stop the row: it lands with the code kept and flagged."""
        event = only(run(table(RECEIPT_HEADER, receipt(条码="GYS-GZ01-L1"))))
        barcode = event.payload.barcode
        assert barcode is not None
        assert (barcode.raw, barcode.symbology) == ("GYS-GZ01-L1", "unknown")
        assert barcode.parse_error

    def test_barcode_lot_contradicting_the_row_fails_naming_both(self) -> None:
        """A label whose lot differs from 批号 fails the row, naming both columns and both lots."""
        result = run(table(RECEIPT_HEADER, receipt(条码=f"(01){GTIN}(17)261231(10)L9(21)S1")), "rk.csv")
        failure = result.failures[0]
        assert (failure.code, failure.location.file, failure.location.line) == (
            "barcode_mismatch",
            "rk.csv",
            2,
        )
        assert (failure.location.column, failure.location.field) == ("条码", "barcode")
        assert "'L9'" in failure.reason
        assert "批号 is 'L1'" in failure.reason

    def test_barcode_expiry_and_serial_contradictions_are_both_reported(self) -> None:
        """A label disagreeing on expiry and serial names both disagreements in one failure."""
        result = run(table(RECEIPT_HEADER, receipt(条码=f"(01){GTIN}(17)270101(10)L1(21)S7")))
        reason = result.failures[0].reason
        assert "expiry 2027-01-01 but 有效期 is 2026-12-31" in reason
        assert "serial 'S7'" in reason

    def test_row_gaps_are_filled_from_the_barcode(self) -> None:
        """A receipt line without lot or expiry takes them from its barcode."""
        row = receipt(批号="", 有效期="", 序列号="", 数量="1", 条码=f"01{GTIN}17261231" + "10LX\x1d21SX")
        payload = only(run(table(RECEIPT_HEADER, row))).payload
        assert (payload.lot, payload.expiry, payload.serials) == ("LX", date(2026, 12, 31), ["SX"])

    def test_quantity_must_be_positive(self) -> None:
        """A receipt of zero or fewer units fails on the quantity column."""
        failure = run(table(RECEIPT_HEADER, receipt(数量="0", 序列号=""))).failures[0]
        assert (failure.code, failure.location.column) == ("invalid_quantity", "数量")

    def test_quantity_may_carry_its_unit(self) -> None:
        """`2支` is two units."""
        assert only(run(table(RECEIPT_HEADER, receipt(数量="2支")))).payload.quantity == Decimal(2)

    def test_same_document_in_two_exports_is_one_event(self) -> None:
        """A numbered receipt line has the same event id whichever export carries it."""
        data = table(RECEIPT_HEADER, receipt())
        first = only(run(data, message_id="export-1"))
        second = only(run(b"\xef\xbb\xbf" + data, message_id="export-2"))
        assert first.event_id == second.event_id
        assert first.event_id == event_id_for("spd", "doc:receipt:RK1", "GZ01|L1|S1;S2")

    def test_unnumbered_rows_are_keyed_by_line(self) -> None:
        """Without a document number the id is the export's line, as the HRP ledger does."""
        event = only(run(table(RECEIPT_HEADER, receipt(入库单号="")), message_id="m1"))
        assert event.event_id == event_id_for(SourceSystem.SPD.value, "m1", "line:2")

    def test_repeated_line_of_one_document_stays_two_events(self) -> None:
        """Two identical lines of one document are numbered, not merged."""
        result = run(table(RECEIPT_HEADER, receipt(序列号=""), receipt(序列号="")))
        assert len({e.event.event_id for e in result.events}) == 2


class TestDistributions:
    HEADER = ("配送单号", "出库日期", "出库库房", "领用科室", "物资编码", "批号", "序列号", "数量")

    def test_documented_fields(self) -> None:
        """A distribution moves goods from the store to the department, keeping lot, serials and number."""
        event = only(
            run(table(self.HEADER, ["PS1", "2024-06-05", "中心库房", "手术室", "GZ07", "L1", "S1;S2", "2"]))
        )
        assert isinstance(event, InventoryTransferred)
        assert event.payload.from_location == CENTRAL
        assert event.payload.to_location == LocationRef(department=DeptRef(code="0203", name="手术室"))
        assert (
            event.payload.quantity,
            event.payload.lot,
            event.payload.serials,
            event.payload.document_no,
        ) == (
            Decimal(2),
            "L1",
            ["S1", "S2"],
            "PS1",
        )

    def test_missing_store_is_the_default_store(self) -> None:
        """A distribution naming no store leaves the mapping's default store."""
        event = only(run(table(self.HEADER, ["PS1", "2024-06-05", "", "ICU", "DZ01", "L1", "", "20"])))
        assert event.payload.from_location == CENTRAL

    def test_destination_is_required(self) -> None:
        """A distribution without a receiving department fails on that column."""
        failure = run(
            table(self.HEADER, ["PS1", "2024-06-05", "中心库房", "", "DZ01", "L1", "", "20"])
        ).failures[0]
        assert (failure.code, failure.location.column) == ("missing_required", "领用科室")


class TestConsumption:
    def test_documented_fields(self) -> None:
        """A bedside scan gives place and spot, serial, lot, UDI, charge number and the scan time."""
        scan = f"(01){GTIN}(17)261231(10)L1(21)S1"
        row = ["JF1", "2024-06-12 09:31:05", "ICU", "ICU-03床", "ZY0000001", "GZ10", "L1", "S1", scan]
        event = only(run(table(SCAN_HEADER, row)))
        assert isinstance(event, InventoryConsumed)
        payload = event.payload
        assert payload.location == LocationRef(
            department=DeptRef(code="0101", name="重症医学科"), location="ICU-03床"
        )
        assert (payload.quantity, payload.lot, payload.serial, payload.charge_id) == (
            Decimal(1),
            "L1",
            "S1",
            "JF1",
        )
        assert payload.udi == scan
        assert payload.patient_token is None
        assert event.occurred_at == datetime(2024, 6, 12, 1, 31, 5, tzinfo=UTC)

    def test_udi_is_the_canonical_form_of_any_scan(self) -> None:
        """A Digital Link scan's UDI is written in the human-readable GS1 form."""
        scan = f"https://id.gs1.org/01/{GTIN}/10/L1/21/S1?17=261231"
        row = ["JF1", "2024-06-12 09:31", "ICU", "", "", "GZ10", "", "", scan]
        payload = only(run(table(SCAN_HEADER, row))).payload
        assert payload.udi == f"(01){GTIN}(17)261231(10)L1(21)S1"
        assert (payload.lot, payload.serial) == ("L1", "S1")

    def test_several_serials_fail(self) -> None:
        """A scan names one unit: a row listing two serials fails."""
        row = ["JF1", "2024-06-12 09:31", "ICU", "", "", "GZ10", "L1", "S1;S2", ""]
        assert run(table(SCAN_HEADER, row)).failures[0].code == "several_serials"

    def test_invalid_time_fails_quoting_the_cell(self) -> None:
        """A scan time that does not exist fails on its column, quoting the whole cell."""
        row = ["JF1", "2024-06-31 10:20:00", "ICU", "", "ZY0000001", "GZ10", "L1", "S1", ""]
        failure = run(table(SCAN_HEADER, row)).failures[0]
        assert (failure.code, failure.location.column) == ("invalid_date", "消耗时间")
        assert "'2024-06-31 10:20:00'" in failure.reason

    def test_failure_excerpt_leaves_unmapped_columns_out(self) -> None:
        """A dead letter keeps the mapped cells, never an unmapped one such as an in-patient number."""
        row = ["JF1", "2024-06-31 10:20:00", "ICU", "", "ZY0000001", "GZ10", "L1", "S1", ""]
        excerpt = run(table(SCAN_HEADER, row)).failures[0].excerpt
        assert excerpt is not None
        assert excerpt["物资编码"] == "GZ10"
        assert "住院号" not in excerpt
        assert "ZY0000001" not in excerpt.values()

    def test_charge_number_keys_the_event(self) -> None:
        """A scan with a charge number is one event whichever export carries it."""
        data = table(SCAN_HEADER, ["JF1", "2024-06-12 09:31", "ICU", "", "", "GZ10", "L1", "S1", ""])
        assert only(run(data, message_id="a")).event_id == only(run(data, message_id="b")).event_id


class TestStocktakeAndDisposal:
    def test_stocktake_gives_counted_and_book_quantities(self) -> None:
        """A stocktake line gives place, lot, counted and book quantities and the reason."""
        header = ["盘点单号", "盘点日期", "盘点库房", "物资编码", "批号", "账面数量", "实盘数量", "差异原因"]
        event = only(run(table(header, ["PD1", "2024-06-28", "中心库房", "DZ07", "L1", "120", "90", "盘亏"])))
        assert isinstance(event, InventoryAdjusted)
        assert (event.payload.location, event.payload.lot) == (CENTRAL, "L1")
        assert (event.payload.counted_quantity, event.payload.book_quantity, event.payload.reason) == (
            Decimal(90),
            Decimal(120),
            "盘亏",
        )

    def test_stocktake_may_count_zero(self) -> None:
        """Nothing left on the shelf is a count, not an error."""
        header = ["盘点日期", "盘点库房", "物资编码", "账面数量", "实盘数量"]
        event = only(run(table(header, ["2024-06-28", "中心库房", "DZ07", "5", "0"])))
        assert event.payload.counted_quantity == Decimal(0)

    @pytest.mark.parametrize(
        ("word", "reason"), [("过期", "expired"), ("包装破损", "damaged"), ("厂家召回", "recalled")]
    )
    def test_disposal_reasons_map_to_canonical_ones(self, word: str, reason: str) -> None:
        """Disposal words map to expired / damaged / recalled."""
        header = ["报损单号", "报损日期", "库房/科室", "物资编码", "批号", "数量", "报损原因", "备注"]
        event = only(run(table(header, ["BS1", "2024-06-05", "中心库房", "DZ01", "L1", "200", word, "整批"])))
        assert isinstance(event, InventoryDisposed)
        assert (event.payload.reason, event.payload.quantity, event.payload.note) == (
            reason,
            Decimal(200),
            "整批",
        )

    def test_unknown_disposal_reason_fails_naming_it(self) -> None:
        """A reason word the mapping lacks is a dead letter that names it."""
        header = ["报损日期", "库房/科室", "物资编码", "数量", "报损原因"]
        failure = run(table(header, ["2024-06-05", "中心库房", "DZ01", "2", "被偷"])).failures[0]
        assert (failure.code, failure.location.column) == ("unknown_disposal_reason", "报损原因")
        assert "'被偷'" in failure.reason


class TestRelaxedDepartments:
    """`strict_departments: false`: only a consumption is kept at a place the mapping does not know
    (a retry corrects it); a receipt, transfer, count, disposal or threshold there still fails."""

    def relaxed(self, tmp_path: Path) -> SpdMapping:
        site = tmp_path / "spd.yaml"
        site.write_text("extends: default\nstrict_departments: false\n", encoding="utf-8")
        return load_spd_mapping(site)

    def test_consumption_is_kept_with_a_note(self, tmp_path: Path) -> None:
        row = ["JF1", "2024-06-12 09:31:05", "眼科", "", "ZY0000001", "GZ10", "L1", "", ""]
        result = run(table(SCAN_HEADER, row), mapping=self.relaxed(tmp_path))
        assert only(result).payload.location == LocationRef(department=DeptRef(name="眼科"))
        assert [(n.code, n.position, n.location.column) for n in result.notes] == [
            ("department_unknown", "line:2#department", "消耗科室")
        ]

    def test_receipt_and_transfer_fail_naming_why(self, tmp_path: Path) -> None:
        mapping = self.relaxed(tmp_path)
        received = run(table([*RECEIPT_HEADER, "库房"], [*receipt(), "眼科二级库"]), mapping=mapping)
        moved = run(
            table(TestDistributions.HEADER, ["PS1", "2024-06-05", "中心库房", "眼科", "GZ07", "L1", "", "2"]),
            mapping=mapping,
        )
        for result, column in ((received, "库房"), (moved, "领用科室")):
            assert (result.events, result.notes) == ((), ())
            (failure,) = result.failures
            assert (failure.code, failure.location.column) == ("unknown_department", column)
            assert "only a consumption is kept at an unknown place" in failure.reason


class TestRecognition:
    def test_type_column_decides_each_row(self) -> None:
        """In a mixed export, each row's 单据类型 picks its kind."""
        header = ["单据类型", "单据号", "日期", "库房", "科室", "物资编码", "批号", "数量", "报损原因"]
        rows = [
            ["入库", "D1", "2024-06-01", "中心库房", "", "DZ01", "L1", "100", ""],
            ["配送", "D2", "2024-06-02", "中心库房", "ICU", "DZ01", "L1", "40", ""],
            ["报损", "D3", "2024-06-03", "", "中心库房", "DZ01", "L1", "5", "破损"],
        ]
        result = run(table(header, *rows))
        assert [e.event.type for e in result.events] == [
            "inventory.received",
            "inventory.transferred",
            "inventory.disposed",
        ]

    def test_unknown_type_word_fails_naming_it(self) -> None:
        """A 单据类型 word no kind claims fails the row, naming the word."""
        header = ["单据类型", "日期", "物资编码", "数量"]
        failure = run(table(header, ["调价", "2024-06-01", "DZ01", "1"])).failures[0]
        assert (failure.code, failure.location.column) == ("unknown_document_type", "单据类型")
        assert "'调价'" in failure.reason

    def test_file_name_pattern_overrides_the_header(self, tmp_path: Path) -> None:
        """A site mapping's file-name pattern says what a file is, even when its header says otherwise."""
        site = tmp_path / "spd.yaml"
        site.write_text(
            "extends: default\ndocuments:\n  receipt:\n    file_patterns: ['*到货*']\n", encoding="utf-8"
        )
        data = table(["物资编码", "物资名称", "数量", "单据日期"], ["DZ01", "口罩", "100", "2024-06-01"])
        assert [e.event.type for e in run(data, "x.csv").events] == ["inventory.item_defined"]
        assert [e.event.type for e in run(data, "6月到货.csv", load_spd_mapping(site)).events] == [
            "inventory.received"
        ]

    def test_unrecognisable_file_is_refused_naming_its_columns(self) -> None:
        """A file no sign identifies is malformed, and the error lists the columns found."""
        with pytest.raises(MalformedMessage, match=r"cannot tell which document.*item_code"):
            run(table(["物资编码", "规格型号", "单位"], ["DZ01", "x", "个"]), "x.csv")


class TestDeterminism:
    def test_same_export_same_events(self) -> None:
        """Translating one export twice gives identical events."""
        data = table(RECEIPT_HEADER, receipt(), receipt(入库单号="", 批号="L2", 序列号="S3;S4"))
        first, second = run(data), run(data)
        assert [e.event for e in first.events] == [e.event for e in second.events]
        assert [e.position for e in first.events] == ["line:2", "line:3"]


class TestHostileFiles:
    def test_zip_bomb_upload_is_refused_before_inflating(self) -> None:
        """An 'XLSX' whose member would inflate 200:1 or more is refused as a possible zip bomb."""
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            archive.writestr("[Content_Types].xml", b"<x/>")
            archive.writestr("xl/worksheets/sheet1.xml", b"\0" * 2_000_000)
        with pytest.raises(MalformedMessage, match=r"scans\.xlsx: refused: .*zip bomb"):
            run(buffer.getvalue(), "scans.xlsx")

    def test_binary_garbage_is_refused_naming_the_file(self) -> None:
        """Bytes that are neither UTF-8 nor GB18030 text are refused with the file's name."""
        with pytest.raises(MalformedMessage, match=r"^upload\.csv: "):
            run(b"\x81\x30\xff\xfe" * 8, "upload.csv")
