"""The registry's HTTP API on SQLite and PostgreSQL: availability, identity lookups, history, conflicts, people's links."""

from __future__ import annotations

import json
from contextlib import asynccontextmanager
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from projections.assets.availability import AvailabilityConfig, PoolRule
from projections.assets.registry import AssetRegistry, RegistryConfig
from projections.runtime.db import make_engine
from projections.runtime.runner import ProjectionRunner
from projections.runtime.tracking import apply_batch, ensure_tables
from tests.e2e.conftest import Wired, open_api
from tests.unit.projections.factories import records
from tests.unit.projections.registry_factories import (
    EQUIP,
    ER,
    HOUR,
    T0,
    calibrated,
    card,
    hrp,
    loaned,
    mint,
    status,
    used,
)

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterator
    from pathlib import Path

    from sqlalchemy import Engine

    from schemas.envelope import EventBase

TOPIC = "canonical.asset.v1"
NOW = datetime(2024, 3, 5, 4, 0, tzinfo=UTC)  # 12:00 in Asia/Shanghai
CONFIG = RegistryConfig(
    availability=AvailabilityConfig(pool_rules=(PoolRule(department="设备科", name_contains="呼吸机"),))
)
HIS = mint("his.code", "VENT-7")


class FixedClock:
    def now(self) -> datetime:
        return NOW


def stream() -> list[EventBase]:
    """Ventilators of the ICU, ER and 设备科, a monitor, a HIS usage before its link, a loan, a conflict."""
    return [
        used("u1", HIS, at=T0 - HOUR),
        hrp("r1", "ZC-1", ("his.code", "VENT-7"), udi="U-1"),
        hrp("r2", "ZC-2", department=ER),
        hrp("r3", "ZC-3", department=EQUIP),
        hrp("r4", "ZC-4", department=EQUIP, udi="U-1"),
        hrp("r5", "ZC-5", name="监护仪", model="iMEC10"),
        status("s2", card("ZC-2"), "under_repair", at=T0 + HOUR),
        loaned("l3", card("ZC-3"), "JY-3", ER, due=datetime(2024, 3, 4, tzinfo=UTC), at=T0 + HOUR),
        calibrated("c1", card("ZC-1"), on=date(2024, 1, 1), until=date(2024, 12, 31)),
    ]


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    eng = make_engine(db_url)
    projection = AssetRegistry(CONFIG)
    ensure_tables(eng, projection)
    apply_batch(eng, projection, records(stream()))
    yield eng
    eng.dispose()


@asynccontextmanager
async def _api(db_url: str, tmp_path: Path) -> AsyncIterator[Wired]:
    async with open_api(db_url, tmp_path / "hub", clock=FixedClock()) as w:
        yield w


@pytest.fixture
async def client(engine: Engine, db_url: str, tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    async with _api(db_url, tmp_path) as w:
        yield w.http


async def _published(w: Wired) -> list[dict[str, Any]]:
    """Everything on canonical.asset.v1 (the API's publisher writes there)."""
    consumer = await w.hub.bus.consumer([TOPIC], group=None, from_beginning=True)
    try:
        records = await consumer.poll(max_records=100, timeout_s=0.5)
    finally:
        await consumer.close()
    return [json.loads(r.value) for r in records]


class TestAvailability:
    async def test_ventilators_per_department_with_totals_and_pool(self, client: httpx.AsyncClient) -> None:
        """GET /availability?type=呼吸机 answers per department, most ready first, with totals and the pool."""
        response = await client.get("/availability", params={"type": "呼吸机"})
        assert response.status_code == 200
        body = response.json()
        assert (body["type"], body["as_of"]) == ("呼吸机", "2024-03-05")
        got = [
            (d["department_name"], d["ready"], d["on_loan"], d["under_repair"], d["pool"])
            for d in body["items"]
        ]
        assert got == [("重症医学科", 1, 0, 0, 0), ("设备科", 1, 1, 0, 2), ("急诊科", 0, 0, 1, 0)]
        assert body["totals"] == {
            "ready": 2,
            "on_loan": 1,
            "under_repair": 1,
            "calibration_due": 0,
            "unavailable": 0,
            "total": 4,
            "pool": 2,
            "pool_ready": 1,
        }
        assert body["total"] == 3

    async def test_readiness_is_judged_on_the_asked_day(self, client: httpx.AsyncClient) -> None:
        """on= a day after the ICU ventilator's calibration ran out: it counts as calibration due."""
        body = (await client.get("/availability", params={"type": "呼吸机", "on": "2025-01-01"})).json()
        icu = next(d for d in body["items"] if d["department_name"] == "重症医学科")
        assert (icu["ready"], icu["calibration_due"]) == (0, 1)

    async def test_devices_list_with_class_and_pool_flag(self, client: httpx.AsyncClient) -> None:
        """GET /availability/devices lists the devices themselves, filtered by class."""
        body = (
            await client.get("/availability/devices", params={"type": "呼吸机", "availability": "ready"})
        ).json()
        assert [(d["asset_id"], d["department_name"], d["pool"]) for d in body["items"]] == [
            (card("ZC-1"), "重症医学科", False),
            (card("ZC-4"), "设备科", True),
        ]
        assert body["total"] == 2

    async def test_the_summary_exports_as_csv(self, client: httpx.AsyncClient) -> None:
        """Accept: text/csv turns the department rows into a spreadsheet."""
        response = await client.get(
            "/availability", params={"type": "呼吸机"}, headers={"Accept": "text/csv"}
        )
        assert response.headers["content-type"].startswith("text/csv")
        assert "设备科" in response.text


class TestAssets:
    async def test_lookup_by_any_identifier_or_scheme_and_value(self, client: httpx.AsyncClient) -> None:
        """identifier= finds the golden record by a plain value or by scheme:value."""
        for value in ("VENT-7", "his.code:VENT-7", "hrp.card:ZC-1"):
            body = (await client.get("/assets", params={"identifier": value})).json()
            assert [i["asset_id"] for i in body["items"]] == [card("ZC-1")], value
        assert (await client.get("/assets", params={"identifier": "udi:VENT-7"})).json()["total"] == 0

    async def test_a_merged_id_answers_with_the_golden_record(self, client: httpx.AsyncClient) -> None:
        """GET /assets/{provisional id} returns the golden record it was merged into, saying so."""
        body = (await client.get(f"/assets/{HIS}")).json()
        assert (body["asset_id"], body["requested_id"], body["merged_from"]) == (card("ZC-1"), HIS, [HIS])
        assert body["calibration"]["valid"] is True
        assert body["last_used_at"] == "2024-03-01T07:00:00Z"

    async def test_the_loan_is_overdue_by_the_clock(self, client: httpx.AsyncClient) -> None:
        """The loan due on 2024-03-04 is overdue at the injected now (2024-03-05)."""
        body = (await client.get(f"/assets/{card('ZC-3')}")).json()
        assert (body["loan"]["borrower_department_name"], body["loan"]["overdue"], body["loan_overdue"]) == (
            "急诊科",
            True,
            True,
        )

    async def test_unknown_id_is_404(self, client: httpx.AsyncClient) -> None:
        """An id that names no device answers 404 with the reason."""
        response = await client.get("/assets/AST-nope/history")
        assert response.status_code == 404
        assert "nor a record merged into one" in response.json()["detail"]

    async def test_history_is_oldest_first_with_sources(self, client: httpx.AsyncClient) -> None:
        """The HIS usage that came before the link opens the golden record's history, with its raw reference."""
        body = (await client.get(f"/assets/{card('ZC-1')}/history")).json()
        items = body["items"]
        assert [(i["type"], i["source_system"], i["record_id"]) for i in items] == [
            ("asset.used", "his", HIS),
            ("asset.registered", "hrp", card("ZC-1")),
            ("asset.calibrated", "hrp", card("ZC-1")),
        ]
        assert (items[0]["raw_ref"], items[0]["source_message_id"]) == ("raw-u1", "msg-u1")
        assert items[2]["summary"] == "calibrated 2024-01-01: passed, valid until 2024-12-31"

    async def test_conflicts_are_listed(self, client: httpx.AsyncClient) -> None:
        """Two cards claiming UDI U-1: one open conflict, listed for a person."""
        body = (await client.get("/assets/conflicts")).json()
        assert [
            (c["scheme"], c["value"], c["holder_asset_id"], c["claimant_asset_id"]) for c in body["items"]
        ] == [("udi", "U-1", card("ZC-1"), card("ZC-4"))]
        assert (await client.get("/assets/conflicts", params={"status": "resolved"})).json()["total"] == 0


class TestPeopleLinks:
    async def test_a_link_is_published_then_applied(
        self, engine: Engine, db_url: str, tmp_path: Path
    ) -> None:
        """POST publishes asset.identifier_linked (person); once applied, the UDI moves and the conflict is resolved."""
        async with _api(db_url, tmp_path) as w:
            client = w.http
            body = {"scheme": "udi", "value": "U-1", "actor": "王工"}
            response = await client.post(f"/assets/{card('ZC-4')}/identifiers", json=body)
            assert response.status_code == 202
            (event,) = await _published(w)
            assert response.json() == {
                "event_id": event["event_id"],
                "asset_id": card("ZC-4"),
                "status": "accepted",
            }
            assert (event["type"], event["payload"]["linked_by"], event["payload"]["actor"]) == (
                "asset.identifier_linked",
                "person",
                "王工",
            )
            runner = ProjectionRunner(AssetRegistry(CONFIG), w.hub.bus, engine)
            await runner.run_until_idle()
            await runner.close()
            detail = (await client.get(f"/assets/{card('ZC-4')}")).json()
            assert {"scheme": "udi", "value": "U-1", "linked_by": "person"} in detail["identifiers"]
            conflicts = (await client.get("/assets/conflicts", params={"status": "all"})).json()["items"]
            assert [(c["status"], c["resolved_asset_id"]) for c in conflicts] == [("resolved", card("ZC-4"))]

    @pytest.mark.parametrize(
        ("path", "body", "code"),
        [
            ("/assets/AST-nope/identifiers", {"scheme": "udi", "value": "U-9", "actor": "王工"}, 404),
            ("/assets/{a}/identifiers", {"scheme": "UDI!", "value": "U-9", "actor": "王工"}, 422),
            ("/assets/{a}/identifiers", {"scheme": "udi", "value": " ", "actor": "王工"}, 422),
            ("/assets/{a}/identifiers", {"scheme": "udi", "value": "U-9"}, 422),
        ],
    )
    async def test_bad_requests_publish_nothing(
        self, *, engine: Engine, db_url: str, tmp_path: Path, path: str, body: dict[str, str], code: int
    ) -> None:
        """Unknown asset, malformed scheme, blank value or no actor: refused, nothing published."""
        async with _api(db_url, tmp_path) as w:
            response = await w.http.post(path.format(a=card("ZC-1")), json=body)
            assert (response.status_code, await _published(w)) == (code, [])
