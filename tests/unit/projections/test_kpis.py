"""KPIs on a hand-computed scenario: uptime, MTTR, MTBF, repairs, cost, utilisation, per device and group.

Period: 10 days (240 h) from T0; now = T0 + 9.5 days.
- A1 (6854, ICU): WO-1 down 6 h (request -> completion), cost 1000.00; WO-2 reports 60 min down
  ending at its completion, cost 500.50; WO-3 reports the same outage again (its request ->
  completion, 30 min, inside WO-2's hour): downtime = 7 h (union), repair minutes 360+60+30.
  Usage 2 h, plus 1 h of a use that runs past the period's end.
- A2 (6854, ER): WO-4 requested before the period, completed 12 h into it (36 h repair, cost
  200.00): 12 h down in the period, no repair counted in it; WO-5 open since T0 + 9 d: down 12 h
  until now. Downtime 24 h, one repair.
- A3 (6821, ICU): WO-6 cancelled (no downtime, no repair); WO-7 filed under the OA number N3,
  linked to A3: 4 h down, cost 300.00. Usage 1 h reported by HIS under its own device code H3.
- A4 (6821): decommissioned, no figures: not a device of the period.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal

import pytest
from sqlalchemy import Engine

from projections.work_orders.kpis import compute_kpis
from projections.work_orders.projection import WorkOrders
from projections.work_orders.tables import METADATA
from schemas._base import Identifier
from schemas.assets import Category
from schemas.ids import asset_id_for
from tests.unit.projections.factories import decommissioned, linked, registered
from tests.unit.projections.test_work_orders_factories import (
    DB_PARAMS,
    ER,
    ICU,
    T0,
    Feed,
    cancelled,
    completed,
    projection_database,
    requested,
    reset,
    used,
)

H, D = timedelta(hours=1), timedelta(days=1)
START, END, NOW = T0, T0 + 10 * D, T0 + 9 * D + 12 * H
PERIOD_H = 240
C6854 = Category(code="6854", name="手术室、急救室、诊疗室设备及器具")
C6821 = Category(code="6821", name="医用电子仪器设备")


@pytest.fixture(scope="module", params=DB_PARAMS)
def module_engine(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Engine]:
    yield from projection_database(request, tmp_path_factory, WorkOrders())


@pytest.fixture
def scenario(module_engine: Engine) -> Iterator[Engine]:
    reset(module_engine, METADATA)
    feed = Feed(module_engine)
    feed(
        registered("ra1", "A1", card="C-A1", category=C6854, department=ICU),
        registered("ra2", "A2", card="C-A2", category=C6854, department=ER),
        registered("ra3", "A3", card="C-A3", category=C6821, department=ICU),
        registered("ra4", "A4", card="C-A4", category=C6821, department=ICU),
        decommissioned("da4", "A4"),
        linked("l3", "A3", "oa.no", "N3"),
        linked("h3", "A3", "his.code", "H3"),
    )
    feed(
        requested("w1", "WO-1", at=T0 + D, asset=("hrp.card", "C-A1")),
        completed("c1", "WO-1", at=T0 + D + 6 * H, cost="1000.00"),
        requested("w2", "WO-2", at=T0 + 3 * D, asset=("hrp.card", "C-A1")),
        completed("c2", "WO-2", at=T0 + 3 * D + 2 * H, cost="500.50", downtime=60),
        requested("w3", "WO-3", at=T0 + 3 * D + 90 * timedelta(minutes=1), asset=("hrp.card", "C-A1")),
        completed("c3", "WO-3", at=T0 + 3 * D + 2 * H),
        requested("w4", "WO-4", at=T0 - D, asset=("hrp.card", "C-A2")),
        completed("c4", "WO-4", at=T0 + 12 * H, cost="200.00"),
        requested("w5", "WO-5", at=T0 + 9 * D, asset=("hrp.card", "C-A2")),
        requested("w6", "WO-6", at=T0 + 2 * D, asset=("hrp.card", "C-A3")),
        cancelled("x6", "WO-6", at=T0 + 2 * D + H),
        requested("w7", "WO-7", at=T0 + 5 * D, asset=("oa.no", "N3")),
        completed("c7", "WO-7", at=T0 + 5 * D + 4 * H, cost="300.00"),
    )
    his_id = asset_id_for(Identifier(scheme="his.code", value="H3"))
    feed(
        used("u1", "A1", start=T0 + 4 * D, end=T0 + 4 * D + 2 * H),
        used("u2", "A1", start=END - H, end=END + H),
        used("u3", his_id, start=T0 + 6 * D, end=T0 + 6 * D + H),
    )
    return module_engine


def kpis(engine: Engine, group_by: str) -> dict[str, dict]:
    with engine.connect() as conn:
        rows = compute_kpis(conn, group_by=group_by, start=START, end=END, now=NOW)  # type: ignore[arg-type]
    return {r["key"]: r for r in rows}


def pick(row: dict, *names: str) -> tuple:
    return tuple(row[n] for n in names)


FIGURES = (
    "devices",
    "downtime_hours",
    "uptime_pct",
    "repairs",
    "completed_repairs",
    "mttr_hours",
    "mtbf_hours",
    "maintenance_cost",
    "usage_hours",
    "utilisation_pct",
    "uses",
)


class TestPerDevice:
    def test_device_with_overlapping_reports(self, scenario: Engine) -> None:
        """A1: 7 h down (the duplicate report counts once), MTTR 2.5 h over 3 repairs, cost 1500.50, 3 h used."""
        a1 = kpis(scenario, "device")["A1"]
        assert pick(a1, *FIGURES) == (
            1, 7.0, round(100 * (PERIOD_H - 7) / PERIOD_H, 2), 3, 3, 2.5, round((PERIOD_H - 7) / 3, 2),
            Decimal("1500.50"), 3.0, round(100 * 3 / PERIOD_H, 2), 2,
        )  # fmt: skip

    def test_device_with_clipped_and_open_outages(self, scenario: Engine) -> None:
        """A2: 12 h of an outage begun before the period plus 12 h of an open one until now."""
        a2 = kpis(scenario, "device")["A2"]
        assert pick(a2, *FIGURES) == (
            1, 24.0, 90.0, 1, 1, 36.0, 216.0, Decimal("200.00"), 0.0, 0.0, 0,
        )  # fmt: skip

    def test_device_reached_through_the_crosswalk(self, scenario: Engine) -> None:
        """A3: the OA-numbered repair and the HIS-coded use count for it; the cancelled order does not."""
        a3 = kpis(scenario, "device")["A3"]
        assert pick(a3, *FIGURES) == (
            1, 4.0, round(100 * (PERIOD_H - 4) / PERIOD_H, 2), 1, 1, 4.0, float(PERIOD_H - 4),
            Decimal("300.00"), 1.0, round(100 / PERIOD_H, 2), 1,
        )  # fmt: skip

    def test_decommissioned_device_without_figures_is_left_out(self, scenario: Engine) -> None:
        """The device list is A1-A3: A4 was decommissioned and has nothing in the period."""
        assert sorted(kpis(scenario, "device")) == ["A1", "A2", "A3"]


class TestPerGroup:
    def test_category_sums_its_devices(self, scenario: Engine) -> None:
        """6854 = A1 + A2: 31 h down over 480 device-hours, 4 repairs, MTTR (450+2160) min / 4."""
        row = kpis(scenario, "category")["6854"]
        assert pick(row, "name", *FIGURES) == (
            "手术室、急救室、诊疗室设备及器具", 2, 31.0, round(100 * 449 / 480, 2), 4, 4,
            round(2610 / 4 / 60, 2), round(449 / 4, 2), Decimal("1700.50"), 3.0, round(100 * 3 / 480, 2), 2,
        )  # fmt: skip

    def test_department_groups_by_the_assets_department(self, scenario: Engine) -> None:
        """ICU = A1 + A3 (11 h down, 4 repairs), ER = A2."""
        rows = kpis(scenario, "department")
        assert (
            pick(rows["ICU"], "name", "devices", "downtime_hours", "repairs", "maintenance_cost"),
            pick(rows["ER"], "name", "devices", "downtime_hours", "repairs"),
        ) == (("重症医学科", 2, 11.0, 4, Decimal("1800.50")), ("急诊科", 1, 24.0, 1))

    def test_an_open_work_order_keeps_its_device_down_in_later_periods(self, scenario: Engine) -> None:
        """A year later only WO-5 is still open: A2 is down all period (6854 at 50 %), nothing else happened."""
        with scenario.connect() as conn:
            rows = compute_kpis(
                conn, group_by="category", start=END + 400 * D, end=END + 410 * D, now=END + 500 * D
            )
        assert [
            pick(r, "key", "devices", "uptime_pct", "repairs", "mtbf_hours", "mttr_hours") for r in rows
        ] == [
            ("6821", 1, 100.0, 0, None, None),
            ("6854", 2, 50.0, 0, None, None),
        ]
