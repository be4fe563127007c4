"""The drill-down's breakdown: children per level, and whole months read from the monthly rows
give the same figures as the days."""

from __future__ import annotations

import random
from datetime import date, timedelta

import pytest
from sqlalchemy import create_engine, func, select

from projections.energy.hierarchy import breakdown
from projections.energy.tables import METADATA, daily, monthly

METERS = [("M1", "A", "1F", "A-1F-ER"), ("M2", "A", "2F", "A-2F-OPD"), ("M3", "B", "3F", "B-3F-ICU")]
DAY0 = date(2024, 1, 1)


@pytest.fixture(scope="module")
def engine():  # type: ignore[no-untyped-def]
    rng = random.Random(7)
    engine = create_engine("sqlite://")
    METADATA.create_all(engine)
    days, months = [], {}
    for meter, building, floor, zone in METERS:
        for d in range(120):
            day = DAY0 + timedelta(days=d)
            row = {"series": f"MTR-{meter}/electricity_kwh", "day": day.isoformat(), "month": day.isoformat()[:7],
                   "meter_id": meter, "quantity": "electricity_kwh", "building": building, "floor": floor,
                   "zone": zone, "dept_code": None, "dept_name": None, "total": round(rng.uniform(10, 90), 3),
                   "samples": 96}  # fmt: skip
            days.append(row)
            month = months.setdefault((meter, row["month"]), {**row, "total": 0.0, "samples": 0})
            month["total"] += row["total"]
            month["samples"] += 96
    with engine.begin() as conn:
        conn.execute(daily.insert(), days)
        conn.execute(monthly.insert(), [{k: v for k, v in m.items() if k != "day"} for m in months.values()])
    return engine


@pytest.mark.parametrize(
    ("start", "end"),
    [
        (date(2024, 1, 15), date(2024, 3, 10)),  # days, a whole month, days
        (date(2024, 2, 1), date(2024, 2, 29)),  # one whole month
        (date(2024, 1, 1), date(2024, 4, 29)),  # three whole months and the days of the fourth
        (date(2024, 3, 5), date(2024, 3, 20)),  # days inside a month
        (date(2024, 1, 31), date(2024, 3, 1)),  # a day, a month, a day
    ],
)
def test_months_and_days_give_the_figures_of_the_days(engine, start: date, end: date) -> None:  # type: ignore[no-untyped-def]
    d = daily.c
    with engine.connect() as conn:
        got = {r["id"]: r["value"] for r in breakdown(conn, level="campus", ident=None, start=start, end=end)}
        truth = dict(
            conn.execute(
                select(d.building, func.sum(d.total))
                .where(d.day >= start.isoformat(), d.day <= end.isoformat())
                .group_by(d.building)
            ).all()
        )
    assert got.keys() == truth.keys()
    assert all(got[b] == pytest.approx(truth[b], abs=1e-6) for b in truth)


def test_each_level_names_its_children(engine) -> None:  # type: ignore[no-untyped-def]
    span = {"start": date(2024, 1, 1), "end": date(2024, 1, 31)}
    with engine.connect() as conn:
        floors = [r["id"] for r in breakdown(conn, level="building", ident="A", **span)]
        zones = [r["id"] for r in breakdown(conn, level="floor", ident="A/2F", **span)]
        meters = [r["id"] for r in breakdown(conn, level="zone", ident="B-3F-ICU", **span)]
        leaf = breakdown(conn, level="meter", ident="M1", **span)  # type: ignore[arg-type]
    assert (floors, zones, meters, leaf) == (["A/1F", "A/2F"], ["A-2F-OPD"], ["M3"], [])
