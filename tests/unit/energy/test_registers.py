"""Interval consumption from registers: rollover, replacement, never negative; spread over hours."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from projections.energy.registers import hour_of, hourly_totals, intervals_of, spread, step

T = datetime(2024, 6, 1, 0, 0, tzinfo=UTC)


class TestStep:
    def test_a_growing_register_uses_the_difference(self) -> None:
        """123.5 after 100 is 23.5 used."""
        assert step(100.0, 123.5, kind="cumulative").consumption == 23.5

    def test_a_register_near_its_maximum_wrapping_is_a_rollover(self) -> None:
        """999990 then 5.2 on a 999999.99 register: 15.19 used, noted as a rollover."""
        done = step(999990.0, 5.2, kind="cumulative", register_max=999999.99)
        assert (done.consumption, done.note) == (pytest.approx(15.19), "rollover")

    def test_a_drop_to_near_zero_is_a_replacement_not_negative_use(self) -> None:
        """4521.3 then 0.04: a new meter; what it shows is what was used since."""
        done = step(4521.3, 0.04, kind="cumulative", register_max=99999.999)
        assert (done.consumption, done.note) == (0.04, "replaced")

    def test_a_flagged_replacement_counts_from_the_new_register(self) -> None:
        """The source says 换表: the new value is the use, whatever came before."""
        assert step(50.0, 60.0, kind="cumulative", replaced=True).note == "replaced"

    def test_a_register_going_backwards_uses_nothing(self) -> None:
        """4521.3 then 4000: a misread, zero use noted `backwards`, never -521.3."""
        done = step(4521.3, 4000.0, kind="cumulative")
        assert (done.consumption, done.note) == (0.0, "backwards")

    def test_the_first_reading_of_a_meter_has_no_interval(self) -> None:
        """Nothing before it: its interval is unknown, not its whole register."""
        assert step(None, 123.0, kind="cumulative").consumption is None

    def test_interval_readings_are_their_own_use(self) -> None:
        """An interval register is the use of the interval as read."""
        assert step(None, 0.21, kind="interval").consumption == 0.21

    @settings(max_examples=50, deadline=None)
    @given(st.lists(st.floats(min_value=0, max_value=1e6, allow_nan=False), min_size=2, max_size=30))
    def test_never_negative(self, values: list[float]) -> None:
        """Whatever a register does, no interval is negative."""
        readings = [(T + timedelta(minutes=15 * i), v) for i, v in enumerate(values)]
        for interval in intervals_of(readings, kind="cumulative", register_max=1e6):
            assert interval.consumption is None or interval.consumption >= 0


class TestSpread:
    def test_a_reading_on_the_hour_closes_the_hour_before(self) -> None:
        """A reading at 10:00 ends the 09:00 hour."""
        assert hour_of(T.replace(hour=10)) == T.replace(hour=9)

    def test_a_gap_spreads_use_over_the_hours_it_covers(self) -> None:
        """12 used from 00:00 to 03:00 is 4 in each hour, not a surge in the last."""
        shares = spread(T, T + timedelta(hours=3), 12.0)
        assert shares == [(T, 4.0), (T + timedelta(hours=1), 4.0), (T + timedelta(hours=2), 4.0)]

    def test_a_gap_hour_has_use_but_no_sample(self) -> None:
        """Hours a gap spans carry their share of use and zero samples (gap detection reads that)."""
        readings = [(T, 0.0), (T + timedelta(hours=3), 12.0)]
        totals = hourly_totals(intervals_of(readings, kind="cumulative"), consumption=True)
        assert [(round(t, 6), n) for t, n, _, _ in totals.values()] == [(4.0, 0), (4.0, 0), (4.0, 1)]
