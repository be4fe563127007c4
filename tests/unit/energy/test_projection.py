"""The energy read model: consumption by place and period, replacements and rollovers, late readings."""

from __future__ import annotations

from datetime import date, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from projections.energy import Energy
from projections.energy.queries import consumption
from projections.energy.tables import daily, hourly, monthly, readings, series
from tests.unit.energy.factories import engine_with, reading, t

TZ = ZoneInfo("Asia/Shanghai")


def _quarters(meter: str, start_value: float, per_quarter: float, hours: int, **kw: object) -> list:
    return [
        reading(meter, t(1, 0) + timedelta(minutes=15 * i), round(start_value + per_quarter * i, 3), **kw)  # type: ignore[arg-type]
        for i in range(hours * 4 + 1)
    ]


def _tables(engine) -> tuple[list, list, list]:  # type: ignore[no-untyped-def]
    with engine.connect() as conn:
        return (
            [tuple(r) for r in conn.execute(select(readings).order_by(readings.c.series, readings.c.at))],
            [tuple(r) for r in conn.execute(select(hourly).order_by(hourly.c.series, hourly.c.hour))],
            [tuple(r) for r in conn.execute(select(daily).order_by(daily.c.series, daily.c.day))],
        )


class TestConsumption:
    def test_hourly_and_daily_totals_follow_the_register(self) -> None:
        """1 kWh a quarter for 3 hours: 4 per hour, 12 in the (local) day."""
        p = Energy()
        engine = engine_with(p)
        with engine.begin() as conn:
            p.apply(conn, _quarters("E1", 100.0, 1.0, 3))
            rows = consumption(conn, level="building", ident="B", start=date(2024, 6, 1), end=date(2024, 6, 1),
                               grain="hour", tz=TZ)  # fmt: skip
            days = consumption(conn, level="zone", ident="B-3F-ICU", start=date(2024, 6, 1), end=date(2024, 6, 1),
                               grain="day", tz=TZ, area_m2=1500.0)  # fmt: skip
        assert [(r["period"], r["value"]) for r in rows] == [
            ("2024-06-01T08:00", 4.0), ("2024-06-01T09:00", 4.0), ("2024-06-01T10:00", 4.0)
        ]  # fmt: skip
        assert (days[0]["value"], days[0]["per_m2"]) == (12.0, 0.008)

    def test_a_meter_replaced_mid_period_is_not_negative_consumption(self) -> None:
        """The register drops from 4521 to near zero: the day's use is what both meters measured."""
        q = timedelta(minutes=15)
        before = [reading("W1", t(1, 0) + i * q, 4521.0 + 0.25 * i, quantity="water_m3") for i in range(5)]
        after = [reading("W1", t(1, 1) + i * q, 0.05 + 0.25 * i, quantity="water_m3") for i in range(1, 5)]
        p = Energy()
        engine = engine_with(p)
        with engine.begin() as conn:
            p.apply(conn, [*before, *after])
            notes = [n for (n,) in conn.execute(select(readings.c.note).where(readings.c.note.is_not(None)))]
            (day,) = consumption(conn, level="meter", ident="W1", start=date(2024, 6, 1), end=date(2024, 6, 1),
                                 grain="day", tz=TZ)  # fmt: skip
        assert notes == ["replaced"]
        assert day["value"] == pytest.approx(1.0 + 0.30 + 0.75)  # old meter, new meter's first, the rest

    def test_a_rollover_is_counted_across_the_wrap(self) -> None:
        """999999.5 -> 0.5 on a 999999.99 register is 0.99 used, not -999999."""
        evs = [reading("E9", t(1, 0, 0), 999999.0, register_max=999999.99),
               reading("E9", t(1, 0, 15), 999999.5, register_max=999999.99),
               reading("E9", t(1, 0, 30), 0.5, register_max=999999.99)]  # fmt: skip
        p = Energy()
        engine = engine_with(p)
        with engine.begin() as conn:
            p.apply(conn, evs)
            (row,) = consumption(conn, level="campus", ident=None, start=date(2024, 6, 1), end=date(2024, 6, 1),
                                 grain="day", tz=TZ)  # fmt: skip
        assert row["value"] == pytest.approx(0.5 + 0.99)

    def test_late_and_shuffled_batches_give_the_same_tables(self) -> None:
        """Readings applied in any order and batching fold to the same rows as in order."""
        evs = _quarters("E1", 100.0, 1.0, 5) + _quarters("W1", 10.0, 0.1, 5, quantity="water_m3")
        in_order, shuffled = Energy(), Energy()
        a, b = engine_with(in_order), engine_with(shuffled)
        with a.begin() as conn:
            in_order.apply(conn, evs)
        mixed = evs[::-1]
        with b.begin() as conn:
            for i in range(0, len(mixed), 7):
                shuffled.apply(conn, mixed[i : i + 7])
            shuffled.apply(conn, evs[:10])  # a resend changes nothing
        assert _tables(a) == _tables(b)

    def test_a_batch_starting_on_the_hour_completes_the_hour_before(self) -> None:
        """Valve positions split into two batches at 01:00 (which closes the 00:00 hour) give the
        same hours as one batch: the first reading of the second batch counts in the 00:00 hour."""
        evs = [reading("HV", t(1, 0) + timedelta(minutes=15 * i), 10 * i, quantity="heating_valve_pct", kind="instant")
               for i in range(1, 9)]  # fmt: skip
        whole, split = Energy(), Energy()
        a, b = engine_with(whole), engine_with(split)
        with a.begin() as conn:
            whole.apply(conn, evs)
        with b.begin() as conn:
            split.apply(conn, evs[:3])
            split.apply(conn, evs[3:])
        assert _tables(a) == _tables(b)
        assert [(r[1].hour, r[-3], r[-2]) for r in _tables(b)[1]] == [(0, 100.0, 4), (1, 260.0, 4)]

    def test_a_late_reading_on_the_hour_changes_the_hour_before(self) -> None:
        """A valve position at 01:00 that arrives after the 01:15 one counts in the 00:00 hour."""
        evs = [reading("HV", t(1, 0) + timedelta(minutes=15 * i), 10 * i, quantity="heating_valve_pct", kind="instant")
               for i in range(1, 6)]  # fmt: skip
        whole, late = Energy(), Energy()
        a, b = engine_with(whole), engine_with(late)
        with a.begin() as conn:
            whole.apply(conn, evs)
        with b.begin() as conn:
            late.apply(conn, [*evs[:3], evs[4]])
            late.apply(conn, [evs[3]])
        assert _tables(a) == _tables(b)

    def test_month_on_month_and_year_on_year(self) -> None:
        """A month compares with the month before and the same month a year before."""
        evs = []
        for month, year, use in ((5, 2024, 20.0), (6, 2024, 30.0), (6, 2023, 15.0)):
            start = t(10, 0, month=month).replace(year=year)
            evs += [reading("E1", start, 1000.0), reading("E1", start + timedelta(minutes=15), 1000.0 + use)]
        p = Energy()
        engine = engine_with(p)
        with engine.begin() as conn:
            p.apply(conn, evs)
            rows = consumption(conn, level="department", ident="0301", start=date(2024, 6, 1),
                               end=date(2024, 6, 30), grain="month", tz=TZ)  # fmt: skip
        (june,) = rows
        assert (june["period"], june["value"]) == ("2024-06", 30.0)
        assert (june["previous_period"], june["change_vs_previous_pct"]) == (20.0, 50.0)
        assert (june["same_period_last_year"], june["change_vs_last_year_pct"]) == (15.0, 100.0)

    def test_instant_quantities_are_averaged_not_summed(self) -> None:
        """Valve positions 40 and 60 in one hour are a mean of 50 %."""
        evs = [reading("HV", t(1, 0, 15), 40, quantity="heating_valve_pct", kind="instant"),
               reading("HV", t(1, 0, 30), 60, quantity="heating_valve_pct", kind="instant")]  # fmt: skip
        p = Energy()
        engine = engine_with(p)
        with engine.begin() as conn:
            p.apply(conn, evs)
            (row,) = consumption(conn, level="zone", ident="B-3F-ICU", start=date(2024, 6, 1), end=date(2024, 6, 1),
                                 grain="hour", tz=TZ, area_m2=100.0)  # fmt: skip
        assert (row["aggregate"], row["value"], row["per_m2"]) == ("mean", 50.0, None)

    def test_a_department_scope_sees_only_its_zones(self) -> None:
        """The ICU's key asking for building B gets the ICU's meters only."""
        evs = _quarters("E1", 0.0, 1.0, 1) + _quarters("E5", 0.0, 2.0, 1, zone="B-5F-WARD")
        p = Energy()
        engine = engine_with(p)
        with engine.begin() as conn:
            p.apply(conn, evs)
            whole = consumption(conn, level="building", ident="B", start=date(2024, 6, 1), end=date(2024, 6, 1),
                                grain="day", tz=TZ)  # fmt: skip
            icu = consumption(conn, level="building", ident="B", start=date(2024, 6, 1), end=date(2024, 6, 1),
                              grain="day", tz=TZ, department="重症医学科")  # fmt: skip
        assert (whole[0]["value"], icu[0]["value"]) == (12.0, 4.0)


class TestBatchesOfManySeries:
    """A batch's hours, days and months are written for all its series at once (projections.energy.rollup)."""

    @staticmethod
    def _campus() -> list:
        """Meters read at different times (some an hour apart, one over midnight local), a water
        meter and valve positions; two meters share a zone."""
        evs = _quarters("E1", 100.0, 1.0, 30) + _quarters("E2", 5.0, 0.5, 30, zone="B-5F-WARD")
        evs += _quarters("W1", 10.0, 0.1, 30, quantity="water_m3", zone="A-1F-ER")
        evs += [e for e in _quarters("E3", 0.0, 2.0, 30) if e.occurred_at.minute in {0, 30}]
        evs += [
            reading(
                "V1",
                t(1, 0) + timedelta(minutes=20 * i),
                40 + i % 7,
                quantity="heating_valve_pct",
                kind="instant",
            )
            for i in range(90)
        ]
        return sorted(evs, key=lambda e: e.occurred_at)

    def test_one_batch_of_every_meter_equals_the_meters_one_at_a_time(self) -> None:
        evs = self._campus()
        together, alone = Energy(), Energy()
        a, b = engine_with(together), engine_with(alone)
        with a.begin() as conn:
            for i in range(0, len(evs), 40):  # every batch holds several meters' readings
                together.apply(conn, evs[i : i + 40])
        with b.begin() as conn:
            for meter in sorted({e.payload.meter_id for e in evs}):
                for e in (e for e in evs if e.payload.meter_id == meter):
                    alone.apply(conn, [e])
        assert _tables(a) == _tables(b)
        with a.connect() as conn:
            months = [tuple(r) for r in conn.execute(select(monthly).order_by(monthly.c.series))]
        with b.connect() as conn:
            assert months == [tuple(r) for r in conn.execute(select(monthly).order_by(monthly.c.series))]

    def test_a_head_without_its_reading_is_read_the_plain_way(self) -> None:
        """Should a series' head name a time no stored reading has (a table edited by hand), the
        next readings still chain onto the last stored one, as if the head were right."""
        evs = _quarters("E1", 100.0, 1.0, 3)
        p, q = Energy(), Energy()
        edited, plain = engine_with(p), engine_with(q)
        with edited.begin() as conn:
            p.apply(conn, evs[:5])  # 00:00 .. 01:00
            conn.execute(series.update().values(last_at=evs[8].occurred_at + timedelta(minutes=5)))  # 02:05
            p.apply(conn, evs[9:])  # 02:15 on: its hour holds no stored reading
        with plain.begin() as conn:
            q.apply(conn, evs[:5])
            q.apply(conn, evs[9:])
        assert _tables(edited) == _tables(plain)
        assert _tables(plain)[0][5][7] == 5.0  # 01:00 -> 02:15: one interval, its consumption known
