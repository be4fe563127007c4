"""Blocks of readings (`facility.meter_readings_recorded`) fold like the readings one by one."""

from __future__ import annotations

from datetime import date, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from projections.energy import Energy
from projections.energy.queries import consumption
from projections.energy.tables import daily, hourly, readings, series
from tests.unit.energy.factories import block, engine_with, reading, t

TZ = ZoneInfo("Asia/Shanghai")
Q = timedelta(minutes=15)


def _tables(engine) -> tuple[list, ...]:  # type: ignore[no-untyped-def]
    with engine.connect() as conn:
        return tuple(
            [tuple(r) for r in conn.execute(select(table).order_by(*table.primary_key.columns))]
            for table in (readings, hourly, daily, series)
        )


def _fold(*batches: list) -> object:  # type: ignore[type-arg]
    p = Energy()
    engine = engine_with(p)
    for batch in batches:
        with engine.begin() as conn:
            p.apply(conn, batch)
    return engine


def _campus() -> tuple[list, list]:  # type: ignore[type-arg]
    """Two series over a day boundary (site time), with a replacement in the water meter."""
    power = [reading("E1", t(1, 14) + i * Q, round(100.0 + 1.25 * i, 3)) for i in range(48)]
    water = [
        reading("W1", t(1, 14) + i * Q, round(4521.0 + 0.25 * i, 3), quantity="water_m3") for i in range(20)
    ]
    water += [reading("W1", t(1, 19) + i * Q, round(0.05 + 0.25 * i, 3), quantity="water_m3",
                      quality=("replaced",) if i == 0 else ()) for i in range(20)]  # fmt: skip
    return power, water


class TestBlocks:
    def test_a_block_folds_to_the_same_tables_as_its_readings_one_by_one(self) -> None:
        power, water = _campus()
        singles = _fold(power + water)
        blocks = _fold([block(power), block(water)])
        assert _tables(blocks) == _tables(singles)
        assert len(_tables(blocks)[0]) == len(power) + len(water)

    def test_blocks_split_anywhere_and_mixed_with_singles_give_the_same_tables(self) -> None:
        """Old single events on the log and new blocks, in several batches, late ones included."""
        power, water = _campus()
        mixed = _fold(
            [block(power[10:30]), *water[:5]],
            [block(water[5:33]), block(power[:10])],  # power[:10] arrives late
            [block(power[30:]), block(water[33:]), power[3]],  # a resent reading changes nothing
        )
        assert _tables(mixed) == _tables(_fold(power + water))

    def test_a_replacement_and_a_rollover_inside_a_block_are_not_negative(self) -> None:
        """The flagged new meter and a wrapped register, inside blocks: no negative consumption."""
        _, water = _campus()
        wrap = [reading("E9", t(1, 0) + i * Q, v, register_max=999999.99)
                for i, v in enumerate((999998.0, 999999.5, 0.5, 1.5))]  # fmt: skip
        engine = _fold([block(water), block(wrap)])
        with engine.connect() as conn:
            noted = select(readings.c.series, readings.c.note).where(readings.c.note.is_not(None))
            notes = {row.series: row.note for row in conn.execute(noted)}
            lows = conn.execute(select(readings.c.consumption).where(readings.c.consumption < 0)).all()
            (day,) = consumption(conn, level="meter", ident="E9", start=date(2024, 6, 1), end=date(2024, 6, 1),
                                 grain="day", tz=TZ)  # fmt: skip
        assert notes == {"MTR-W1/water_m3": "replaced", "MTR-E9/electricity_kwh": "rollover"}
        assert lows == []
        assert day["value"] == pytest.approx(1.5 + 0.99 + 1.0)

    def test_unfold_gives_the_single_readings_with_their_ids(self) -> None:
        """A block read one reading at a time is the single events, ids and flags included."""
        _, water = _campus()
        assert block(water).unfold() == [
            w.model_copy(update={"recorded_at": water[0].recorded_at}) for w in water
        ]
