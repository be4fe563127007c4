"""Header detection and row classification: title rows, synonyms, summary/footer/blank rows."""

from __future__ import annotations

import pytest

from adapters._files.header import find_header, normalise_label
from adapters._files.mapping import FileMapping
from adapters._files.sheet import read_sheet
from adapters.errors import MalformedMessage

SYNONYMS = {
    "card_no": ["资产编号", "卡片编号"],
    "name": ["资产名称", "设备名称"],
    "original_value": ["原值"],
    "department": ["使用科室"],
}


def mapping(**overrides: object) -> FileMapping:
    return FileMapping.model_validate(
        {"columns": SYNONYMS, "required": ["card_no", "name"], "skip_markers": ["制表人"], **overrides}
    )


def sheet_of(text: str, **overrides: object):
    return read_sheet(text.encode("gbk"), filename="t.csv", mapping=mapping(**overrides))


class TestNormaliseLabel:
    @pytest.mark.parametrize(
        "cell", ["原值", " 原 值 ", "*原值", "原值(元)", "原值（元）", "原值：", "原值＊"]
    )
    def test_decorations_are_ignored(self, cell: str) -> None:
        """Spaces, required-marks, full-width forms and a trailing unit note do not stop a match."""
        assert normalise_label(cell) == "原值"

    def test_latin_is_case_insensitive(self) -> None:
        """UDI and udi are the same column title."""
        assert normalise_label("UDI") == normalise_label("udi")


class TestFindHeader:
    def test_title_rows_are_skipped(self) -> None:
        """The header is the first row with enough known columns, below the title rows."""
        rows = [
            (1, ("XX市人民医院固定资产台账",)),
            (2, ("导出日期：2024-06-30", "资产名称")),
            (3, ("序号", "卡片编号", "设备名称", "原值")),
            (4, ("1", "A", "B", "1")),
        ]
        header = find_header(rows, SYNONYMS, filename="t.csv", min_matches=3)
        assert header.line == 3
        assert dict(header.columns) == {"card_no": 1, "name": 2, "original_value": 3}
        assert header.title_of("card_no") == "卡片编号"

    def test_missing_header_names_file_and_nearest_row(self) -> None:
        """No qualifying row raises MalformedMessage naming the file and the nearest candidate."""
        rows = [(1, ("标题",)), (2, ("资产名称", "别的")), (3, ("x", "y"))]
        with pytest.raises(
            MalformedMessage, match=r"t\.csv: no header row in the first 15 rows.*nearest was line 2"
        ):
            find_header(rows, SYNONYMS, filename="t.csv")

    def test_header_beyond_scan_window_is_not_found(self) -> None:
        """A header lower than scan_rows is not taken (data rows must not be mistaken for it)."""
        rows = [(i, ("title",)) for i in range(1, 5)] + [(5, ("资产编号", "资产名称", "原值"))]
        with pytest.raises(MalformedMessage):
            find_header(rows, SYNONYMS, filename="t.csv", scan_rows=4)

    def test_duplicate_titles_are_made_unique(self) -> None:
        """Two columns with the same title become distinct record keys."""
        header = find_header([(1, ("资产编号", "资产名称", "原值", "原值"))], SYNONYMS, filename="t.csv")
        assert header.titles == ("资产编号", "资产名称", "原值", "原值 (2)")
        assert header.columns["original_value"] == 2


class TestSheetRows:
    def test_rows_are_classified(self) -> None:
        """Data, summary, footer and repeated-header rows are told apart; blank rows vanish."""
        sheet = sheet_of(
            "XX医院台账\n资产编号,资产名称,原值\nA1,呼吸机,100\n,,\nA2,监护仪,200\n资产编号,资产名称,原值\n"
            "合计,,300\n小计：,,300\n,,300\n制表人：张三\n"
        )
        kinds = [(r.line, r.kind) for r in sheet.records]
        assert kinds == [
            (3, "data"),
            (5, "data"),
            (6, "repeated_header"),
            (7, "summary"),
            (8, "summary"),
            (9, "summary"),
            (10, "footer"),
        ]

    def test_marker_in_a_device_name_is_still_data(self) -> None:
        """A device named 总计量泵 with a card number is data, not a total."""
        sheet = sheet_of("资产编号,资产名称,原值\nA1,总计量泵,100\n")
        assert [r.kind for r in sheet.records] == ["data"]

    def test_missing_key_with_text_is_data(self) -> None:
        """A row with a name but no card number is data (it will fail), never a silent summary."""
        sheet = sheet_of("资产编号,资产名称,原值\n,呼吸机,100\n")
        assert [r.kind for r in sheet.records] == ["data"]

    def test_text_by_field_uses_the_files_own_titles(self) -> None:
        """Records are keyed by the file's titles; text() reads them by canonical field."""
        sheet = sheet_of("卡片编号,设备名称,原值,备注\nA1, 呼吸机 ,100,x,多出来\n")
        record = sheet.records[0]
        assert record.values == {
            "卡片编号": "A1",
            "设备名称": " 呼吸机 ",
            "原值": "100",
            "备注": "x",
            "(column 5)": "多出来",
        }
        assert sheet.text(record, "name") == "呼吸机"
        assert sheet.text(record, "department") == ""
