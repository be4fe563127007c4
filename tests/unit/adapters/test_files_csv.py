"""CSV reading: delimiter sniffing, person-visible line numbers, limits, and never crashing."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters._files import csv_reader
from adapters._files.csv_reader import read_csv_rows, sniff_delimiter
from adapters._files.grid import ReadLimits
from adapters._files.tabular import read_grid
from adapters.errors import MalformedMessage


class TestSniffDelimiter:
    @pytest.mark.parametrize("delimiter", [",", "\t", ";", "|"])
    def test_each_candidate_is_recognised(self, delimiter: str) -> None:
        """A file split by any supported delimiter is recognised as such."""
        text = "\n".join(
            delimiter.join(r) for r in [["资产编号", "资产名称", "原值"], ["A1", "呼吸机", "1,000.00"]]
        )
        assert sniff_delimiter(text) == delimiter

    def test_title_rows_do_not_confuse_it(self) -> None:
        """Single-cell title rows above a semicolon table leave the semicolon chosen."""
        text = (
            "XX市人民医院固定资产台账\n导出日期：2024-06-30\n"
            "资产编号;资产名称;原值\nA1;呼吸机;1,000.00\nA2;监护仪;2,000.00\n"
        )
        assert sniff_delimiter(text) == ";"

    def test_quoted_commas_do_not_outvote_tabs(self) -> None:
        """Amounts quoted with thousands separators in a tab file do not make it comma-separated."""
        text = 'a\tb\tc\n"1,000,000.00"\tx\ty\n"2,000.00"\tz\tw\n'
        assert sniff_delimiter(text) == "\t"


class TestReadCsvRows:
    def test_lines_count_from_one_and_skip_nothing(self) -> None:
        """Rows carry the editor's 1-based line numbers, blank lines included in the count."""
        rows, _ = read_csv_rows("a,b\n\nc,d\n", filename="f.csv")
        assert rows == ((1, ("a", "b")), (2, ()), (3, ("c", "d")))

    def test_multiline_field_keeps_following_lines_right(self) -> None:
        """A quoted field spanning lines starts on its first line and does not shift later rows."""
        rows, _ = read_csv_rows('h1,h2\n1,"第一行\n第二行"\n2,x\n', filename="f.csv")
        assert [line for line, _ in rows] == [1, 2, 4]
        assert rows[1][1] == ("1", "第一行\n第二行")

    def test_gbk_trail_bytes_equal_to_the_delimiter_stay_in_their_cell(self) -> None:
        """GBK characters whose second byte is 0x7C survive a pipe-delimited file intact."""
        grid = read_grid("资产名称|备注\n亅億|倈\n".encode("gbk"), filename="f.csv")
        assert grid.delimiter == "|"
        assert grid.rows[1] == (2, ("亅億", "倈"))

    def test_trailing_empty_cells_are_dropped(self) -> None:
        """Excel's padding of empty trailing cells does not count as columns."""
        rows, _ = read_csv_rows("a,b,,,\n", filename="f.csv")
        assert rows == ((1, ("a", "b")),)

    def test_too_many_columns_is_refused_with_line(self) -> None:
        """A row wider than the limit raises MalformedMessage naming the file and line."""
        with pytest.raises(MalformedMessage, match=r"f\.csv: line 2: 5 columns, more than 4"):
            read_csv_rows("a\n1,2,3,4,5\n", filename="f.csv", limits=ReadLimits(max_cols=4))

    def test_too_many_rows_is_refused(self) -> None:
        """A file longer than the row limit raises MalformedMessage."""
        with pytest.raises(MalformedMessage, match="more than 2 rows"):
            read_csv_rows("a\nb\nc\n", filename="f.csv", limits=ReadLimits(max_rows=2))

    def test_empty_file_is_malformed(self) -> None:
        """An empty or whitespace-only export is refused by name."""
        with pytest.raises(MalformedMessage, match=r"e\.csv: the file is empty"):
            read_grid(b" \r\n", filename="e.csv")

    def test_old_xls_is_refused_with_advice(self) -> None:
        """A binary XLS (OLE2) is refused with what to do instead."""
        with pytest.raises(MalformedMessage, match=r"save it as \.xlsx or CSV"):
            read_grid(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 100, filename="old.xls")

    @settings(max_examples=300, deadline=None)
    @given(st.binary(max_size=2000))
    def test_arbitrary_bytes_never_crash(self, data: bytes) -> None:
        """Any bytes either read as rows with increasing line numbers or raise MalformedMessage."""
        try:
            grid = read_grid(data, filename="fuzz.csv")
        except MalformedMessage as exc:
            refusal = str(exc)
        else:
            refusal = ""
        if refusal:
            assert refusal.startswith("fuzz.csv: ")
            return
        lines = [line for line, _ in grid.rows]
        assert lines == sorted(set(lines))
        assert all(isinstance(c, str) for _, cells in grid.rows for c in cells)

    @settings(max_examples=200, deadline=None)
    @given(
        st.lists(
            st.lists(
                st.text(alphabet=st.characters(codec="gbk", exclude_characters="\r\n\0"), max_size=8),
                min_size=2,
                max_size=5,
            ),
            min_size=1,
            max_size=8,
        )
    )
    def test_written_tables_read_back(self, table: list[list[str]]) -> None:
        """A table written with the csv module in GBK reads back cell for cell (trailing blanks aside)."""
        import csv
        import io

        out = io.StringIO()
        csv.writer(out, lineterminator="\n").writerows(table)
        rows, _ = read_csv_rows(out.getvalue(), filename="t.csv", delimiter=",")
        expected = [list(r) for r in table]
        for r in expected:
            while r and not r[-1].strip():
                r.pop()
        assert [list(cells) for _, cells in rows] == expected


class TestLines:
    """The block splitter gives the lines the line pattern gives, and the check refuses what reading refuses."""

    @given(
        st.lists(
            st.sampled_from(["a", "甲", ",", '"', "\r", "\n", "\r\n", "\x0c", "\u2028", " "]), max_size=60
        ),
        st.integers(1, 8),
    )
    @settings(max_examples=300, deadline=None)
    def test_the_same_lines_as_the_pattern_at_any_block_size(self, parts: list[str], block: int) -> None:
        text = "".join(parts)
        assert list(csv_reader._lines(text, block)) == [m.group(0) for m in csv_reader._LINE.finditer(text)]

    @pytest.mark.parametrize(
        ("text", "limits"),
        [
            ("a,b\nc,d,e,f\n", ReadLimits(max_cols=3)),
            ("a,b,,,\nc,d\n", ReadLimits(max_cols=2)),  # trailing empties are not columns: no error
            ("a\nb\nc\n", ReadLimits(max_rows=2)),
            ("a,bbbb\n", ReadLimits(max_cell_chars=3)),
            ('a,"b\n', ReadLimits()),
            ("a\0b\n", ReadLimits()),
        ],
    )
    def test_the_check_raises_what_reading_every_row_raises(self, text: str, limits: ReadLimits) -> None:
        def outcome(read: object) -> str:
            try:
                read()  # type: ignore[operator]
            except MalformedMessage as exc:
                return str(exc)
            return "ok"

        checked = outcome(lambda: csv_reader.check_csv_rows(text, filename="f", delimiter=",", limits=limits))
        read = outcome(
            lambda: list(csv_reader.iter_csv_rows(text, filename="f", delimiter=",", limits=limits))
        )
        assert checked == read
