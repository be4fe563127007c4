"""Times on the replay command line: ISO 8601, naive read in the site's zone, bare dates end of day."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
import typer
from hypothesis import given
from hypothesis import strategies as st

from hub.cli.replay import parse_time

SHANGHAI = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)
naive = st.datetimes(min_value=datetime(1990, 1, 1), max_value=datetime(2100, 1, 1))  # noqa: DTZ001
offsets = st.integers(min_value=-12 * 60, max_value=14 * 60).map(lambda m: timedelta(minutes=m))


class TestParseTime:
    @given(naive, offsets)
    def test_a_time_with_an_offset_is_taken_as_written(self, value: datetime, offset: timedelta) -> None:
        """Any ISO time with an offset parses to that very instant."""
        aware = value.replace(tzinfo=timezone(offset))
        assert parse_time(aware.isoformat(), SHANGHAI, now=NOW) == aware

    @given(naive)
    def test_a_naive_time_is_read_in_the_site_zone(self, value: datetime) -> None:
        """Without an offset the wall time is the site's (HUB_TZ), as for naive source times."""
        parsed = parse_time(value.isoformat(sep=" "), SHANGHAI, now=NOW)
        assert parsed == value.replace(tzinfo=SHANGHAI)

    def test_a_bare_date_means_the_end_of_that_day(self) -> None:
        """`2024-06-30` is how things stood on that day: its last instant in the site's zone."""
        assert parse_time("2024-06-30", SHANGHAI, now=NOW) == datetime.combine(
            date(2024, 6, 30),
            time.max,
            tzinfo=SHANGHAI,
        )

    def test_a_compact_date_is_a_date_too(self) -> None:
        """`20240630` (ISO basic format) is the same day as `2024-06-30`."""
        assert parse_time("20240630", SHANGHAI, now=NOW) == parse_time("2024-06-30", SHANGHAI, now=NOW)

    def test_now_and_zulu(self) -> None:
        """`now` is the moment given; a trailing Z is UTC."""
        assert parse_time("now", SHANGHAI, now=NOW) == NOW
        assert parse_time("2024-06-30T06:00Z", SHANGHAI, now=NOW) == datetime(2024, 6, 30, 6, tzinfo=UTC)

    @given(st.text(max_size=20).filter(lambda s: s.strip().lower() != "now"))
    def test_anything_else_is_a_usage_error_or_a_time(self, text: str) -> None:
        """Arbitrary input either parses to an aware time or is refused as a bad parameter, never crashes."""
        try:
            parsed = parse_time(text, SHANGHAI, now=NOW)
        except typer.BadParameter:
            return
        assert parsed.tzinfo is not None

    def test_garbage_is_refused(self) -> None:
        """A value that is not a date or time is a usage error naming it."""
        with pytest.raises(typer.BadParameter, match="yesterday"):
            parse_time("yesterday", SHANGHAI, now=NOW)
