"""Date and amount parsing: every export spelling, exact Decimals, and precise refusals."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from adapters._files.values import ValueParseError, looks_numeric, parse_amount, parse_date

BUILT_IN_STYLES = (
    lambda d: d.isoformat(),
    lambda d: f"{d.year}-{d.month}-{d.day}",
    lambda d: d.strftime("%Y/%m/%d"),
    lambda d: f"{d.year}/{d.month}/{d.day}",
    lambda d: d.strftime("%Y%m%d"),
    lambda d: d.strftime("%Y.%m.%d"),
    lambda d: f"{d.year}年{d.month}月{d.day}日",
    lambda d: f"{d.isoformat()} 00:00:00",
)


class TestParseDate:
    @pytest.mark.parametrize(
        "text",
        [
            "2019-3-5",
            "2019-03-05",
            "2019/03/05",
            "2019/3/5",
            "20190305",
            "2019.03.05",
            "2019年3月5日",
            "2019 年 3 月 5 日",
            "２０１９－０３－０５",
            "2019-03-05 00:00:00",
            "2019-03-05T08:30",
            "43529",
            "43529.0",
        ],
    )
    def test_common_spellings(self, text: str) -> None:
        """Every common export spelling of 5 March 2019 (and its Excel serial) parses."""
        assert parse_date(text) == date(2019, 3, 5)

    def test_extra_formats_from_the_mapping(self) -> None:
        """A day-first date parses only once the mapping adds its format."""
        with pytest.raises(
            ValueParseError, match=r"'05.03.2019' is not a date \(expected one of: 2019-03-05"
        ):
            parse_date("05.03.2019")
        assert parse_date("05.03.2019", ["%d.%m.%Y"]) == date(2019, 3, 5)

    def test_impossible_calendar_date_says_why(self) -> None:
        """A well-formed but impossible date names the date and the calendar problem."""
        with pytest.raises(
            ValueParseError, match=r"'2018-02-30' is not a valid calendar date: day is out of range"
        ):
            parse_date("2018-02-30")

    @pytest.mark.parametrize("text", ["2019", "2019-03", "03/05/2019", "去年", "2019-03/05", "1234"])
    def test_ambiguous_or_partial_dates_are_refused(self, text: str) -> None:
        """Partial, mixed-separator, US-style or bare-year text is refused rather than guessed."""
        with pytest.raises(ValueParseError):
            parse_date(text)

    def test_empty_is_refused(self) -> None:
        """An empty cell is not a date."""
        with pytest.raises(ValueParseError, match="empty date"):
            parse_date("  ")

    @given(
        st.dates(min_value=date(1000, 1, 1), max_value=date(9999, 12, 31)), st.sampled_from(BUILT_IN_STYLES)
    )
    def test_round_trip_of_every_style(self, day: date, style) -> None:
        """Any date written in any built-in style parses back to itself."""
        assert parse_date(style(day)) == day

    @given(st.text(max_size=24))
    def test_what_is_accepted_re_parses_from_iso(self, text: str) -> None:
        """Whatever text is accepted, its ISO rendering parses to the same date."""
        try:
            parsed = parse_date(text)
        except ValueParseError:
            return
        assert parse_date(parsed.isoformat()) == parsed


class TestParseAmount:
    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            ("1,234,567.80", "1234567.8"),
            ("￥12,800.00", "12800"),
            ("¥12800", "12800"),
            ("35800元", "35800"),
            ("１２８００．５０", "12800.5"),
            ("RMB 1,000", "1000"),
            ("(1,200.00)", "-1200"),
            ("-3.5", "-3.5"),
            (" 0.00 ", "0"),
            ("1，000", "1000"),
        ],
    )
    def test_export_spellings(self, text: str, expected: str) -> None:
        """Separators, currency signs, full-width digits and 元 parse to the exact Decimal, in its
        one form (no trailing fraction zeros): the same number reads the same from CSV and XLSX."""
        result = parse_amount(text)
        assert result == Decimal(expected)
        assert str(result) == expected

    @pytest.mark.parametrize("text", ["待定", "1,23,4", "12.3.4", "1e5", "NaN", "12,800.00美元", ""])
    def test_non_amounts_are_refused(self, text: str) -> None:
        """Words, bad grouping, exponents and other currencies are refused."""
        with pytest.raises(ValueParseError):
            parse_amount(text)

    def test_message_quotes_the_cell(self) -> None:
        """The refusal quotes the original cell text and gives examples."""
        with pytest.raises(ValueParseError, match=r"'待定' is not a number \(expected e.g. 12,800.00"):
            parse_amount("待定")

    def test_custom_suffix(self) -> None:
        """A unit suffix such as 年 can be allowed for non-money numbers."""
        assert parse_amount("8年", suffixes=("年",)) == Decimal(8)

    def test_looks_numeric(self) -> None:
        """looks_numeric agrees with parse_amount."""
        assert looks_numeric("1,000.00")
        assert not looks_numeric("合计")

    @given(
        st.decimals(min_value=Decimal("-1e12"), max_value=Decimal("1e12"), places=2, allow_nan=False),
        st.sampled_from(["{:,.2f}", "{:.2f}", "￥{:,.2f}", "{:.2f}元", "¥{:.2f}"]),
    )
    def test_round_trip_of_formatted_amounts(self, amount: Decimal, template: str) -> None:
        """Any two-place amount written in an export style parses back exactly."""
        assert parse_amount(template.format(amount)) == amount

    @given(st.text(alphabet="0123456789,.-￥元 ", max_size=16))
    def test_what_is_accepted_re_parses_from_str(self, text: str) -> None:
        """Whatever text is accepted, the Decimal's own string parses to the same amount."""
        try:
            amount = parse_amount(text)
        except ValueParseError:
            return
        assert parse_amount(str(amount)) == amount
