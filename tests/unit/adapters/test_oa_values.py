"""Parsing OA field text: date-times in their many forms, durations, levels and parts."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from adapters._files.values import ValueParseError
from adapters.oa.values import (
    PartText,
    parse_datetime,
    parse_end_of_day,
    parse_hours,
    parse_level,
    parse_minutes,
    parse_parts_text,
    parse_quantity,
)
from tests.unit.adapters._oa import SHANGHAI

EIGHT_THIRTY = datetime(2024, 4, 1, 0, 30, tzinfo=UTC)  # 08:30 in Shanghai


class TestDateTimes:
    @pytest.mark.parametrize(
        "text",
        [
            "2024-04-01 08:30:00",
            "2024-04-01 08:30",
            "2024/4/1 8:30",
            "2024.04.01 08:30:00",
            "2024年4月1日 8时30分",
            "2024年4月1日 08:30",
            "2024-04-01T08:30:00",
            "2024-04-01T08:30:00+08:00",
            "2024-04-01T00:30:00Z",
            "202404010830",
            "20240401083000",
            "1711931400000",
            "1711931400",
            "２０２４－０４－０１　０８：３０",
        ],
    )
    def test_forms(self, text: str) -> None:
        """Every common OA form of 2024-04-01 08:30 (Shanghai) reads as the same instant."""
        assert parse_datetime(text, SHANGHAI) == EIGHT_THIRTY

    def test_bare_date_is_local_midnight(self) -> None:
        """A date without a time is midnight at the site."""
        assert parse_datetime("2024-04-01", SHANGHAI) == datetime(2024, 3, 31, 16, 0, tzinfo=UTC)

    def test_due_date_is_end_of_day(self) -> None:
        """A bare due date means the end of that day at the site; a full time stays as written."""
        assert parse_end_of_day("2024-04-01", SHANGHAI) == datetime(2024, 4, 1, 15, 59, 59, tzinfo=UTC)
        assert parse_end_of_day("2024-04-01 08:30", SHANGHAI) == EIGHT_THIRTY

    def test_extra_format(self) -> None:
        """A site's own format from the mapping is tried after the built-in ones."""
        assert parse_datetime("01.04.2024 08:30", SHANGHAI, ["%d.%m.%Y %H:%M"]) == EIGHT_THIRTY

    @pytest.mark.parametrize(
        ("text", "message"),
        [
            ("2024-06-31", "not a valid date-time"),
            ("2024-04-01 25:00", "not a valid date-time"),
            ("明天上午", "is not a date-time"),
            ("0001-01-01", "outside 1900-2199"),
            ("", "empty date-time"),
        ],
    )
    def test_refusals(self, text: str, message: str) -> None:
        """Impossible, unreadable, implausible or empty times are refused with the reason."""
        with pytest.raises(ValueParseError, match=message):
            parse_datetime(text, SHANGHAI)


class TestNumbers:
    @pytest.mark.parametrize(
        ("text", "minutes"), [("90", 90), ("90分钟", 90), ("1.5小时", 90), ("2天", 2880), ("30.5", 31)]
    )
    def test_minutes(self, text: str, minutes: int) -> None:
        """Downtime reads as whole minutes from minutes, hours or days; a half rounds up."""
        assert parse_minutes(text) == minutes

    @pytest.mark.parametrize("text", ["-5", "五分钟", "90 years"])
    def test_bad_minutes(self, text: str) -> None:
        """Negative, worded or unknown-unit durations are refused."""
        with pytest.raises(ValueParseError):
            parse_minutes(text)

    @pytest.mark.parametrize(
        ("text", "hours"), [("3.5", Decimal("3.5")), ("2小时", Decimal(2)), ("1.5h", Decimal("1.5"))]
    )
    def test_hours(self, text: str, hours: Decimal) -> None:
        """Labour hours read exactly, with or without a unit."""
        assert parse_hours(text) == hours

    def test_negative_hours(self) -> None:
        """Negative labour hours are refused."""
        with pytest.raises(ValueParseError, match="negative"):
            parse_hours("-1")

    @pytest.mark.parametrize(
        ("text", "level"), [("1", 1), ("2级", 2), ("二级", 2), ("第三级审批", 3), ("十", 10)]
    )
    def test_levels(self, text: str, level: int) -> None:
        """Approval levels read from digits or Chinese numerals."""
        assert parse_level(text) == level

    @pytest.mark.parametrize("text", ["0", "高级", ""])
    def test_bad_levels(self, text: str) -> None:
        """Zero, words and blanks are not levels."""
        with pytest.raises(ValueParseError):
            parse_level(text)

    @pytest.mark.parametrize(
        ("text", "quantity"), [("2", Decimal(2)), ("2个", Decimal(2)), ("0.5套", Decimal("0.5"))]
    )
    def test_quantity(self, text: str, quantity: Decimal) -> None:
        """Quantities read with an optional unit word."""
        assert parse_quantity(text) == quantity

    def test_zero_quantity(self) -> None:
        """A part's quantity must be more than zero."""
        with pytest.raises(ValueParseError, match="more than 0"):
            parse_quantity("0")


class TestPartsText:
    def test_separators_and_quantities(self) -> None:
        """Parts separated by ；/;/、/new lines, with ×, x or * quantities; a bare name is one."""
        assert parse_parts_text("主板×1；电源模块*2、SpO2探头 x3\n保险丝") == [
            PartText("主板", Decimal(1)),
            PartText("电源模块", Decimal(2)),
            PartText("SpO2探头", Decimal(3)),
            PartText("保险丝", Decimal(1)),
        ]

    def test_names_with_x_are_kept(self) -> None:
        """A name starting with X (X射线管) or ending in a digit (SpO2) is not read as a quantity."""
        assert parse_parts_text("X射线管；SpO2") == [
            PartText("X射线管", Decimal(1)),
            PartText("SpO2", Decimal(1)),
        ]
