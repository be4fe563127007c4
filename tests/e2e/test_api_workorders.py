"""GET /workorders and /workorders/{id} through the real wiring (build_hub + build_api), on SQLite and PostgreSQL read models."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import datetime, timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import Engine

from projections.work_orders.projection import WorkOrders
from tests.e2e.conftest import open_api
from tests.unit.projections.factories import registered
from tests.unit.projections.test_work_orders_factories import (
    DB_PARAMS,
    ER,
    T0,
    Feed,
    approved,
    assigned,
    completed,
    projection_database,
    rejected,
    requested,
)

H = timedelta(hours=1)
NOW = T0 + 10 * H


class FixedClock:
    def __init__(self, at: datetime) -> None:
        self.at = at

    def now(self) -> datetime:
        return self.at


@pytest.fixture(scope="module", params=DB_PARAMS)
def engine(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    """A read-model database (SQLite, then PostgreSQL) holding four work orders.

    WO-1 urgent, answered late (response breach), completed 19,100 CNY after two approvals.
    WO-2 normal, open, from the ER, on card ZC-2; WO-3 high, 10,000 CNY completed without
    approval; WO-4 low, rejected.
    """
    for eng in projection_database(request, tmp_path_factory, WorkOrders()):
        feed = Feed(eng)
        feed(
            registered("reg", "AST-2", card="ZC-2"),
            requested("r1", "WO-1", priority="urgent"),
            assigned("a1", "WO-1", at=T0 + H),
            approved("p1", "WO-1", at=T0 + 2 * H, amount="19100.00", level=1),
            approved("p2", "WO-1", at=T0 + 3 * H, amount="19100.00", level=2),
            completed("c1", "WO-1", at=T0 + 4 * H, cost="19100.00", parts=[("主控板", "18500.00")]),
            requested("r2", "WO-2", at=T0 + H, department=ER, asset=("hrp.card", "ZC-2")),
            requested("r3", "WO-3", at=T0 + 2 * H, priority="high"),
            assigned("a3", "WO-3", at=T0 + 2 * H + 5 * 60 * timedelta(seconds=1)),
            completed("c3", "WO-3", at=T0 + 5 * H, cost="10000.00"),
            requested("r4", "WO-4", at=T0 + 3 * H, priority="low"),
            rejected("j4", "WO-4", at=T0 + 4 * H),
        )
        yield eng


@pytest.fixture
async def client(engine: Engine, tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    url = engine.url.render_as_string(hide_password=False)
    async with open_api(url, tmp_path / "hub", clock=FixedClock(NOW)) as w:
        yield w.http


def ids(body: dict) -> list[str]:
    return [item["workorder_id"] for item in body["items"]]


class TestListWorkOrders:
    async def test_lists_newest_request_first_with_paging(self, client: httpx.AsyncClient) -> None:
        """Without filters: all four, newest request first; limit/offset select a window of the total."""
        everything = (await client.get("/workorders")).json()
        window = (await client.get("/workorders", params={"limit": 2, "offset": 1})).json()
        assert (ids(everything), everything["total"], ids(window), window["total"], window["limit"]) == (
            ["WO-4", "WO-3", "WO-2", "WO-1"],
            4,
            ["WO-3", "WO-2"],
            4,
            2,
        )

    @pytest.mark.parametrize(
        ("params", "expected"),
        [
            ({"status": "open"}, ["WO-2"]),
            ({"status": "rejected"}, ["WO-4"]),
            ({"priority": "urgent"}, ["WO-1"]),
            ({"department": "ER"}, ["WO-2"]),
            ({"department": "重症医学科"}, ["WO-4", "WO-3", "WO-1"]),
            ({"asset": "ZC-2"}, ["WO-2"]),
            ({"asset": "AST-2"}, ["WO-2"]),
            ({"approval_state": "approved"}, ["WO-1"]),
            ({"approval_state": "pending"}, ["WO-3"]),
            ({"from": "2024-04-01T09:00:00Z", "to": "2024-04-01T19:00:00+08:00"}, ["WO-3", "WO-2"]),
        ],
    )
    async def test_filters(self, client: httpx.AsyncClient, params: dict, expected: list[str]) -> None:
        """Each filter keeps the matching work orders only (department is the reporting one)."""
        response = await client.get("/workorders", params=params)
        assert (response.status_code, ids(response.json())) == (200, expected)

    async def test_sla_breached_is_judged_at_the_injected_clock(self, client: httpx.AsyncClient) -> None:
        """At T0+10 h: WO-1 answered late, and WO-2 (normal, 8 h response) unanswered past its due time."""
        breached = (await client.get("/workorders", params={"sla_breached": "true"})).json()
        on_time = (await client.get("/workorders", params={"sla_breached": "false"})).json()
        assert (ids(breached), ids(on_time)) == (["WO-2", "WO-1"], ["WO-4", "WO-3"])

    async def test_flags_an_unapproved_completion(self, client: httpx.AsyncClient) -> None:
        """WO-3 completed at exactly 10,000 CNY without approval: required, pending, flagged."""
        (wo3,) = [i for i in (await client.get("/workorders")).json()["items"] if i["workorder_id"] == "WO-3"]
        assert (
            wo3["approval_required"],
            wo3["approval_state"],
            wo3["completed_unapproved"],
            wo3["cost"],
        ) == (
            True,
            "pending",
            True,
            "10000.00",
        )

    async def test_naive_times_are_refused(self, client: httpx.AsyncClient) -> None:
        """`from` without a UTC offset is ambiguous and answers 422."""
        assert (await client.get("/workorders", params={"from": "2024-04-01T09:00:00"})).status_code == 422

    async def test_csv_export_of_the_list(self, client: httpx.AsyncClient) -> None:
        """Accept: text/csv returns the same items as a CSV with one row per work order."""
        response = await client.get("/workorders", params={"status": "open"}, headers={"Accept": "text/csv"})
        lines = response.text.lstrip("\ufeff").strip().splitlines()
        assert (
            response.headers["content-type"].startswith("text/csv"),
            len(lines),
            "workorder_id" in lines[0],
        ) == (
            True,
            2,
            True,
        )


class TestOneWorkOrder:
    async def test_detail_has_timeline_and_breaches(self, client: httpx.AsyncClient) -> None:
        """WO-1's detail lists its five events oldest first and its breaches, due times in UTC."""
        body = (await client.get("/workorders/WO-1")).json()
        assert (
            [e["event_type"] for e in body["timeline"]],
            [(b["kind"], b["level"], b["due_at"]) for b in body["breaches"]],
            body["approval_level"],
            body["parts_cost"],
        ) == (
            [
                "workorder.requested",
                "workorder.assigned",
                "workorder.approved",
                "workorder.approved",
                "workorder.completed",
            ],
            [
                ("resolution", 1, "2024-04-01T12:00:00Z"),  # completed at 4 h exactly: late
                ("response", 1, "2024-04-01T08:30:00Z"),
                ("response", 2, "2024-04-01T09:00:00Z"),
            ],
            2,
            "18500.00",
        )

    async def test_unknown_work_order_is_404(self, client: httpx.AsyncClient) -> None:
        """An id the read model does not know answers 404."""
        assert (await client.get("/workorders/WO-nope")).status_code == 404

    def test_status_filter_knows_every_lifecycle_state(self) -> None:
        """The API's status choices are the projection's states plus `open`."""
        from typing import get_args

        from hub.api.routes.workorders import StatusQ
        from projections.work_orders.lifecycle import RANK

        states = {t.removeprefix("workorder.") for t in RANK}
        assert set(get_args(StatusQ)) == {"open", *states}

    async def test_documented_in_openapi(self, client: httpx.AsyncClient) -> None:
        """/openapi.json lists both work-order paths."""
        paths = (await client.get("/openapi.json")).json()["paths"]
        assert {"/workorders", "/workorders/{workorder_id}"} <= set(paths)
