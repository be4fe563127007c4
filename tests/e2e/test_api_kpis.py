"""GET /kpis through the real wiring (build_hub + build_api), on SQLite and PostgreSQL read models."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import datetime, timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import Engine

from projections.work_orders.projection import WorkOrders
from schemas.assets import Category
from tests.e2e.conftest import open_api
from tests.unit.projections.factories import registered
from tests.unit.projections.test_work_orders_factories import (
    DB_PARAMS,
    ER,
    ICU,
    T0,
    Feed,
    completed,
    projection_database,
    requested,
    used,
)

H, D = timedelta(hours=1), timedelta(days=1)
NOW = T0 + 100 * D
MONITOR = Category(code="6821", name="医用电子仪器设备")


class FixedClock:
    def now(self) -> datetime:
        return NOW


@pytest.fixture(scope="module", params=DB_PARAMS)
def engine(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    """Two ventilators (A1 in the ICU, A2 in the ER) and a monitor (A3, ICU). A1: a 12 h repair
    costing 800.00 at T0 + 10 d, and 24 h of use; A2: a repair at T0 + 300 d, after NOW."""
    for eng in projection_database(request, tmp_path_factory, WorkOrders()):
        feed = Feed(eng)
        feed(
            registered("r1", "A1", card="C1", department=ICU),
            registered("r2", "A2", card="C2", department=ER),
            registered("r3", "A3", card="C3", department=ICU, category=MONITOR),
            requested("w1", "WO-1", at=T0 + 10 * D, asset=("hrp.card", "C1")),
            completed("c1", "WO-1", at=T0 + 10 * D + 12 * H, cost="800.00"),
            requested("w2", "WO-2", at=T0 + 300 * D, asset=("hrp.card", "C2")),
            completed("c2", "WO-2", at=T0 + 300 * D + 6 * H, cost="50.00"),
            used("u1", "A1", start=T0 + 20 * D, end=T0 + 21 * D),
        )
        yield eng


@pytest.fixture
async def client(engine: Engine, tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    url = engine.url.render_as_string(hide_password=False)
    async with open_api(url, tmp_path / "hub", clock=FixedClock()) as w:
        yield w.http


class TestKpis:
    async def test_default_period_is_the_year_before_now(self, client: httpx.AsyncClient) -> None:
        """Without from/to: the 365 days to the injected now, grouped by category; WO-2 is in the future."""
        body = (await client.get("/kpis")).json()
        rows = {
            r["key"]: (r["devices"], r["repairs"], r["maintenance_cost"], r["downtime_hours"])
            for r in body["items"]
        }
        assert (body["period_to"], body["period_from"], rows) == (
            "2024-07-10T08:00:00Z",
            "2023-07-11T08:00:00Z",
            {"6854": (2, 1, "800.00", 12.0), "6821": (1, 0, "0.00", 0.0)},
        )

    async def test_per_device_in_an_explicit_period(self, client: httpx.AsyncClient) -> None:
        """group_by=device over 100 days from T0: A1 99.5 % up, MTTR 12 h, 1 % utilised."""
        params = {"group_by": "device", "from": "2024-04-01T08:00:00Z", "to": "2024-07-10T08:00:00Z"}
        body = (await client.get("/kpis", params=params)).json()
        a1 = next(r for r in body["items"] if r["asset_id"] == "A1")
        assert (body["total"], a1["uptime_pct"], a1["mttr_hours"], a1["utilisation_pct"], a1["uses"]) == (
            3,
            round(100 * (2400 - 12) / 2400, 2),
            12.0,
            1.0,
            1,
        )

    async def test_per_department_with_paging(self, client: httpx.AsyncClient) -> None:
        """group_by=department lists ER and ICU; limit/offset page through them, total stays 2."""
        body = (await client.get("/kpis", params={"group_by": "department", "limit": 1, "offset": 1})).json()
        assert ([(r["key"], r["name"], r["devices"]) for r in body["items"]], body["total"]) == (
            [("ICU", "重症医学科", 2)],
            2,
        )

    async def test_empty_or_inverted_period_is_422(self, client: httpx.AsyncClient) -> None:
        """`from` at or after `to` answers 422."""
        params = {"from": "2024-05-01T00:00:00Z", "to": "2024-05-01T00:00:00Z"}
        assert (await client.get("/kpis", params=params)).status_code == 422
