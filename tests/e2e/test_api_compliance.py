"""GET /compliance/due through the real wiring (build_hub + build_api), on SQLite and PostgreSQL read models."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import UTC, date, datetime
from pathlib import Path

import httpx
import pytest
from sqlalchemy import Engine

from projections.compliance.projection import Compliance
from schemas._base import DeptRef
from tests.e2e.conftest import open_api
from tests.unit.projections.test_compliance_factories import (
    ComplianceFeed,
    bed,
    calibrated,
    contract,
    inspected,
    ventilator,
)
from tests.unit.projections.test_work_orders_factories import DB_PARAMS, projection_database

# 2024-06-01 02:00 in Shanghai is still 2024-05-31 in UTC: "today" must be the site's date.
NOW = datetime(2024, 5, 31, 18, 0, tzinfo=UTC)


class FixedClock:
    def now(self) -> datetime:
        return NOW


@pytest.fixture(scope="module", params=DB_PARAMS)
def engine(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    """A1 (ICU ventilator): calibration due 06-06, PM 07-01, safety 09-01, contract ends 06-20.
    A2 (ER ventilator): calibration overdue since 05-20. A3 (bed): PM due 2025-01-15."""
    for eng in projection_database(request, tmp_path_factory, Compliance()):
        feed = ComplianceFeed(eng)
        feed(
            ventilator("r1", "A1"),
            calibrated("c1", "A1", date(2023, 6, 6)),
            inspected("p1", "A1", "preventive_maintenance", date(2024, 1, 1), next_due=date(2024, 7, 1)),
            inspected("e1", "A1", "electrical_safety", date(2023, 9, 1)),
            contract("h1", "A1", "HT-2024-01", date(2024, 6, 20)),
            ventilator("r2", "A2", department=DeptRef(code="ER", name="急诊科")),
            calibrated("c2", "A2", date(2023, 5, 20)),
            inspected("p2", "A2", "preventive_maintenance", date(2024, 3, 15)),
            inspected("e2", "A2", "electrical_safety", date(2023, 12, 1)),
            bed("r3", "A3"),
            inspected("p3", "A3", "preventive_maintenance", date(2024, 1, 15)),
        )
        yield eng


@pytest.fixture
async def client(engine: Engine, tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    url = engine.url.render_as_string(hide_password=False)
    async with open_api(url, tmp_path / "hub", clock=FixedClock()) as w:
        yield w.http


def due(body: dict) -> list[tuple[str, str, str, int, bool]]:
    return [(i["asset_id"], i["kind"], i["due_on"], i["days_left"], i["overdue"]) for i in body["items"]]


class TestDue:
    async def test_default_window_is_thirty_days_from_the_site_date(self, client: httpx.AsyncClient) -> None:
        """Today is 2024-06-01 in Shanghai: overdue A2 first, then A1's calibration, contract and PM
        (due 07-01, the window's last day)."""
        body = (await client.get("/compliance/due")).json()
        assert (body["as_of"], body["total"], due(body)) == (
            "2024-06-01",
            4,
            [
                ("A2", "calibration", "2024-05-20", -12, True),
                ("A1", "calibration", "2024-06-06", 5, False),
                ("A1", "contract", "2024-06-20", 19, False),
                ("A1", "preventive_maintenance", "2024-07-01", 30, False),
            ],
        )

    @pytest.mark.parametrize(
        ("params", "expected"),
        [
            ({"within": "2w"}, ["A2/calibration", "A1/calibration"]),
            ({"within": "45", "kind": "preventive_maintenance"}, ["A1/preventive_maintenance"]),
            ({"within": "30d", "department": "急诊科"}, ["A2/calibration"]),
            (
                {"within": "30d", "department": "ICU"},
                ["A1/calibration", "A1/contract", "A1/preventive_maintenance"],
            ),
            ({"within": "30d", "overdue": "true"}, ["A2/calibration"]),
            ({"within": "29d", "overdue": "false"}, ["A1/calibration", "A1/contract"]),
            ({"within": "30d", "as_of": "2025-01-01"}, None),
        ],
    )
    async def test_filters(self, client: httpx.AsyncClient, params: dict, expected: list[str] | None) -> None:
        """within (days or weeks), kind, department, overdue and as_of each shape the list."""
        body = (await client.get("/compliance/due", params=params)).json()
        got = [f"{i['asset_id']}/{i['kind']}" for i in body["items"]]
        if expected is None:  # a report for 2025-01-01: everything of 2024 is overdue, A3's PM is due
            assert (body["as_of"], got[-1], all(i["overdue"] for i in body["items"][:-1])) == (
                "2025-01-01",
                "A3/preventive_maintenance",
                True,
            )
        else:
            assert got == expected

    async def test_each_item_states_whether_its_date_is_projected(self, client: httpx.AsyncClient) -> None:
        """Every listed date of these devices comes from a record (projected false); projected=true lists none."""
        confirmed = (await client.get("/compliance/due", params={"within": "365d"})).json()
        projected = (
            await client.get("/compliance/due", params={"within": "365d", "projected": "true"})
        ).json()
        assert (
            confirmed["total"] > 0,
            {i["projected"] for i in confirmed["items"]},
            projected["total"],
        ) == (True, {False}, 0)

    @pytest.mark.parametrize("within", ["thirty", "30m", "99999d"])
    async def test_bad_window_is_422(self, client: httpx.AsyncClient, within: str) -> None:
        """A window that is not N, Nd or Nw (or is absurdly long) answers 422 naming the problem."""
        response = await client.get("/compliance/due", params={"within": within})
        assert (response.status_code, "within=" in response.json()["detail"]) == (422, True)


class TestWhatNeedsAction:
    async def test_overdue_within_leaves_out_the_old_and_groups_count_the_selection(
        self, client: httpx.AsyncClient
    ) -> None:
        """As of 2025-01-01 with overdue_within=90d: only what fell due since 2024-10-03, plus what is
        due in 30 days; `groups` counts the whole selection per kind, overdue state and basis."""
        everything = (await client.get("/compliance/due", params={"as_of": "2025-01-01"})).json()
        body = (
            await client.get("/compliance/due", params={"as_of": "2025-01-01", "overdue_within": "90d"})
        ).json()
        got = [(i["asset_id"], i["kind"], i["due_on"]) for i in body["items"]]
        assert all(i["days_left"] >= -90 for i in body["items"])
        assert len(everything["items"]) > len(got) > 0
        assert set(got) <= {(i["asset_id"], i["kind"], i["due_on"]) for i in everything["items"]}
        assert [(i["asset_id"], i["kind"]) for i in everything["items"] if i["days_left"] >= -90] == [
            (a, k) for a, k, _ in got
        ]
        assert sum(g["count"] for g in body["groups"]) == body["total"]
        assert {(g["kind"], g["overdue"], g["projected"]) for g in body["groups"]} == {
            (i["kind"], i["overdue"], i["projected"]) for i in body["items"]
        }

    async def test_without_overdue_within_every_overdue_item_is_listed_as_before(
        self, client: httpx.AsyncClient
    ) -> None:
        """The old parameters keep their meaning; a bad overdue_within is a 422."""
        old = (await client.get("/compliance/due", params={"within": "30d", "overdue": "true"})).json()
        assert [i["asset_id"] for i in old["items"]] == ["A2"]
        bad = await client.get("/compliance/due", params={"overdue_within": "ninety"})
        assert bad.status_code == 422
