"""GET /assets and /assets/{id} through the real wiring, on SQLite and PostgreSQL read models."""

from __future__ import annotations

from typing import TYPE_CHECKING

import httpx
import pytest

from projections.assets.registry import AssetRegistry
from projections.runtime.db import make_engine
from projections.runtime.tracking import apply_batch, ensure_tables
from schemas._base import DeptRef
from schemas.assets import Category
from tests.e2e.conftest import open_api
from tests.unit.projections.factories import linked, records, registered, status_changed

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterator
    from pathlib import Path

    from sqlalchemy import Engine

ER = DeptRef(code="ER", name="急诊科")
LAB = Category(code="6840", name="临床检验分析仪器")


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    """A read-model database holding five assets."""
    eng = make_engine(db_url)
    ensure_tables(eng, AssetRegistry())
    events = [
        registered("r1", "A1", name="呼吸机 SV300"),
        registered("r2", "A2", name="Ventilator Evita", department=ER),
        registered("r3", "A3", name="全自动生化分析仪", category=LAB),
        registered("r4", "A4", name="除颤仪", department=ER, category=LAB),
        registered("r5", "A5", name="监护仪"),
        status_changed("s2", "A2", "under_repair", text="维修中"),
        linked("l3", "A3", "udi", "(01)06901234567892"),
    ]
    apply_batch(eng, AssetRegistry(), records(events))
    yield eng
    eng.dispose()


@pytest.fixture
async def client(engine: Engine, db_url: str, tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    async with open_api(db_url, tmp_path / "hub") as w:
        yield w.http


def _ids(body: dict) -> list[str]:
    return [item["asset_id"] for item in body["items"]]


class TestListAssets:
    async def test_lists_a_page_with_total_limit_and_offset(self, client: httpx.AsyncClient) -> None:
        """Without filters: the first page in asset-id order, with total, limit and offset echoed."""
        response = await client.get("/assets")
        assert response.status_code == 200
        body = response.json()
        assert (_ids(body), body["total"], body["limit"], body["offset"]) == (
            ["A1", "A2", "A3", "A4", "A5"],
            5,
            50,
            0,
        )

    async def test_paginates(self, client: httpx.AsyncClient) -> None:
        """limit and offset select a window; total stays the full count."""
        body = (await client.get("/assets", params={"limit": 2, "offset": 2})).json()
        assert (_ids(body), body["total"]) == (["A3", "A4"], 5)

    @pytest.mark.parametrize(
        ("params", "expected"),
        [
            ({"department": "ER"}, ["A2", "A4"]),
            ({"department": "急诊科"}, ["A2", "A4"]),
            ({"status": "under_repair"}, ["A2"]),
            ({"name": "分析仪"}, ["A3"]),
            ({"name": "VENTILATOR"}, ["A2"]),
            ({"category": "临床检验分析仪器"}, ["A3", "A4"]),
            ({"identifier": "(01)06901234567892"}, ["A3"]),
            ({"department": "ER", "category": "6840"}, ["A4"]),
        ],
    )
    async def test_filters(
        self, client: httpx.AsyncClient, params: dict[str, str], expected: list[str]
    ) -> None:
        """Each filter (and their combination) narrows the list as documented."""
        body = (await client.get("/assets", params=params)).json()
        assert (_ids(body), body["total"]) == (expected, len(expected))

    @pytest.mark.parametrize("params", [{"limit": 0}, {"limit": 501}, {"offset": -1}, {"status": "broken"}])
    async def test_rejects_out_of_range_parameters(
        self, client: httpx.AsyncClient, params: dict[str, object]
    ) -> None:
        """limit outside 1..500, a negative offset or an unknown status is a 422, not a silent default."""
        assert (await client.get("/assets", params=params)).status_code == 422

    async def test_chinese_text_is_utf8_json(self, client: httpx.AsyncClient) -> None:
        """Chinese names travel as UTF-8 characters in the JSON body, not \\u escapes."""
        response = await client.get("/assets", params={"department": "ER"})
        assert response.headers["content-type"].startswith("application/json")
        assert "急诊科".encode() in response.content


class TestGetAsset:
    async def test_returns_the_golden_record_with_identifiers(self, client: httpx.AsyncClient) -> None:
        """An asset comes back with its fields, exact money and every identifier."""
        response = await client.get("/assets/A3")
        assert response.status_code == 200
        body = response.json()
        assert body["name"] == "全自动生化分析仪"
        assert (body["original_value"], body["currency"]) == ("185000.00", "CNY")
        assert body["identifiers"] == [
            {"scheme": "hrp.card", "value": "ZC-A3", "linked_by": "registered"},
            {"scheme": "udi", "value": "(01)06901234567892", "linked_by": "mapping"},
        ]
        assert body["last_occurred_at"].endswith(("Z", "+00:00"))

    async def test_unknown_asset_is_404_with_a_clear_detail(self, client: httpx.AsyncClient) -> None:
        """An id the registry does not know answers 404 naming the id."""
        response = await client.get("/assets/AST-nope")
        assert response.status_code == 404
        assert response.json() == {
            "detail": "no asset with id 'AST-nope': not a golden record, nor a record merged into one"
        }


class TestOpenApi:
    async def test_documents_the_asset_routes_and_models(self, client: httpx.AsyncClient) -> None:
        """/openapi.json lists the routes, their filters and the response models."""
        spec = (await client.get("/openapi.json")).json()
        params = {p["name"] for p in spec["paths"]["/assets"]["get"]["parameters"]}
        assert params == {
            "department",
            "status",
            "name",
            "category",
            "identifier",
            "provisional",
            "limit",
            "offset",
        }
        assert {"AssetItemOut", "AssetItemPage", "AssetDetailOut", "HealthOut"} <= set(
            spec["components"]["schemas"]
        )
        assert "404" in spec["paths"]["/assets/{asset_id}"]["get"]["responses"]
