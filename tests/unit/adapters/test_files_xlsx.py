"""XLSX reading: Excel row numbers, typed cells as exact text, zip-bomb refusal before inflating."""

from __future__ import annotations

import io
import zipfile
from datetime import date, datetime

# Excel cells hold naive date-times: the tests build them the same way.
# ruff: noqa: DTZ001
from decimal import Decimal

import openpyxl
import pytest

from adapters._files.grid import ReadLimits
from adapters._files.tabular import read_grid
from adapters._files.values import parse_amount
from adapters._files.xlsx_reader import cell_text, iter_xlsx_rows
from adapters.errors import MalformedMessage


def workbook_bytes(rows: list[list[object]], *, title: str = "台账", extra_sheet: str | None = None) -> bytes:
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.title = title
    for row in rows:
        sheet.append(row)
    if extra_sheet:
        workbook.create_sheet(extra_sheet).append(["另一张表"])
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def zip_bytes(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, body in members.items():
            archive.writestr(name, body)
    return buffer.getvalue()


class TestXlsxRows:
    def test_rows_carry_excel_row_numbers_across_gaps(self) -> None:
        """Row numbers are Excel's, including empty rows in between."""
        data = workbook_bytes([["设备台账"], [], ["卡片编号", "设备名称"], ["KP-1", "呼吸机"]])
        grid = read_grid(data, filename="s.xlsx")
        assert grid.format == "xlsx"
        assert grid.rows == (
            (1, ("设备台账",)),
            (2, ()),
            (3, ("卡片编号", "设备名称")),
            (4, ("KP-1", "呼吸机")),
        )

    def test_typed_cells_become_exact_text(self) -> None:
        """Dates become ISO text, floats their shortest exact decimal, whole floats integers."""
        data = workbook_bytes([[datetime(2019, 3, 5), 12345.6, 3000000.0, 0.1, 42, None, "x"]])
        ((_, cells),) = read_grid(data, filename="s.xlsx").rows
        assert cells == ("2019-03-05", "12345.6", "3000000", "0.1", "42", "", "x")

    def test_float_text_parses_to_the_exact_decimal(self) -> None:
        """An amount stored as an Excel float reaches the amount parser as the exact decimal."""
        assert parse_amount(cell_text(1234567.89)) == Decimal("1234567.89")
        assert cell_text(1e-05) == "0.00001"

    def test_datetime_with_time_keeps_time(self) -> None:
        """A date-time cell keeps its time part; a date cell is a plain date."""
        assert cell_text(datetime(2020, 1, 2, 8, 30)) == "2020-01-02 08:30:00"
        assert cell_text(date(2020, 1, 2)) == "2020-01-02"

    def test_named_sheet_is_read(self) -> None:
        """A mapping's sheet name selects that sheet."""
        data = workbook_bytes([["第一张"]], extra_sheet="补充")
        grid = read_grid(data, filename="s.xlsx", sheet="补充")
        assert (grid.sheet, grid.rows) == ("补充", ((1, ("另一张表",)),))

    def test_missing_sheet_is_named(self) -> None:
        """Asking for a sheet that is not there names the sheets that are."""
        with pytest.raises(MalformedMessage, match=r"no sheet named '缺失' \(sheets: \['台账'\]\)"):
            read_grid(workbook_bytes([["a"]]), filename="s.xlsx", sheet="缺失")

    def test_row_limit(self) -> None:
        """A sheet longer than the row limit is refused."""
        with pytest.raises(MalformedMessage, match="more than 3 rows"):
            read_grid(workbook_bytes([["r"]] * 5), filename="s.xlsx", limits=ReadLimits(max_rows=3))

    def test_an_over_limit_sheet_is_refused_before_any_row_is_read(self) -> None:
        """The rows are counted up front (row numbers, or <row> tags without them): iter_xlsx_rows
        refuses at opening, so no chunk of an over-limit file is ever translated; a sheet at the
        limit opens, and one whose only row is numbered past the limit is refused too."""
        limits = ReadLimits(max_rows=3)
        with pytest.raises(MalformedMessage, match=r"more than 3 rows \(5\)"):
            iter_xlsx_rows(workbook_bytes([["r"]] * 5), filename="s.xlsx", limits=limits)
        _, rows = iter_xlsx_rows(workbook_bytes([["r"]] * 3), filename="s.xlsx", limits=limits)
        assert len(list(rows)) == 3
        book = openpyxl.Workbook()
        book.active.cell(row=9, column=1, value="far down")
        out = io.BytesIO()
        book.save(out)
        with pytest.raises(MalformedMessage, match=r"more than 3 rows \(9\)"):
            iter_xlsx_rows(out.getvalue(), filename="s.xlsx", limits=limits)

    def test_column_limit(self) -> None:
        """A row wider than the column limit is refused with its row number."""
        with pytest.raises(MalformedMessage, match=r"row 2: 6 columns, more than 5"):
            read_grid(
                workbook_bytes([["a"], list("abcdef")]), filename="s.xlsx", limits=ReadLimits(max_cols=5)
            )


class TestZipGuard:
    def test_high_compression_ratio_is_refused_before_opening(self) -> None:
        """A member inflating more than 200:1 (2 MB of zeros) is refused as a possible zip bomb."""
        bomb = zip_bytes({"[Content_Types].xml": b"<x/>", "xl/worksheets/sheet1.xml": b"\0" * 2_000_000})
        with pytest.raises(
            MalformedMessage, match=r"bomb\.xlsx: refused: member xl/worksheets/sheet1\.xml .*zip bomb"
        ):
            read_grid(bomb, filename="bomb.xlsx")

    def test_total_uncompressed_size_is_bounded(self) -> None:
        """A workbook whose members would inflate past the size limit is refused, naming the limit."""
        with pytest.raises(MalformedMessage, match="more than the limit of 1000"):
            read_grid(
                workbook_bytes([["a"]]), filename="s.xlsx", limits=ReadLimits(max_uncompressed_bytes=1000)
            )

    def test_member_count_is_bounded(self) -> None:
        """A zip with more members than allowed is refused."""
        many = zip_bytes({f"m{i}.xml": b"<a/>" for i in range(20)})
        with pytest.raises(MalformedMessage, match="20 zip members, more than 10"):
            read_grid(many, filename="s.xlsx", limits=ReadLimits(max_zip_members=10))

    def test_corrupt_zip_is_malformed(self) -> None:
        """Bytes with a zip signature but no readable archive are refused by name."""
        with pytest.raises(MalformedMessage, match=r"c\.xlsx: not a readable XLSX"):
            read_grid(b"PK\x03\x04garbage" * 10, filename="c.xlsx")

    def test_zip_that_is_not_a_workbook_is_malformed(self) -> None:
        """A valid zip without workbook parts is refused, not crashed on."""
        with pytest.raises(MalformedMessage, match=r"z\.xlsx: not a readable XLSX workbook"):
            read_grid(zip_bytes({"readme.txt": b"hello"}), filename="z.xlsx")

    def test_xml_entities_in_a_sheet_are_refused(self) -> None:
        """A sheet declaring XML entities (the billion-laughs shape) is refused, not expanded."""
        source = zipfile.ZipFile(io.BytesIO(workbook_bytes([["a", 1]])))
        members = {i.filename: source.read(i.filename) for i in source.infolist()}
        sheet = members["xl/worksheets/sheet1.xml"].replace(b"<v>1", b"<v>&lol2;1", 1)
        members["xl/worksheets/sheet1.xml"] = (
            b'<!DOCTYPE l [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;">]>' + sheet
        )
        with pytest.raises(MalformedMessage, match=r"e\.xlsx: not a readable XLSX workbook"):
            read_grid(zip_bytes(members), filename="e.xlsx")
