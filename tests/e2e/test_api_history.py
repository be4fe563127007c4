"""GET /history/{kind}/{id}: any subject's events from the log, each with its source and raw reference."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from hub.bootstrap import Hub
from hub.pipeline import drain
from projections.audit.ledger import entries
from replay.audit.verify import verify
from tests.e2e.conftest import REPO, Wired, wired_hub

OA = REPO / "examples" / "oa" / "工单导出_2024Q2.json"
SPD = REPO / "examples" / "spd"


@pytest.fixture
async def wired(tmp_path: Path) -> AsyncIterator[Wired]:
    """The real wiring (reads recorded on the bus's audit.access.v1), keys off: callers act as admin."""
    async with wired_hub(tmp_path / "hub", settings={"auth": "off"}) as w:
        await w.ingest("oa", OA)
        await w.ingest("spd", SPD / "01_物资字典.csv", SPD / "03_入库单_2024Q2.csv")
        yield w


@pytest.fixture
def hub(wired: Wired) -> Hub:
    return wired.hub


@pytest.fixture
def client(wired: Wired) -> httpx.AsyncClient:
    return wired.http


class TestHistoryApi:
    async def test_work_order_history_names_source_and_raw_reference(
        self, client: httpx.AsyncClient, hub: Hub
    ) -> None:
        """A work order's events come oldest first, each naming OA, its export file and the archived raw ref."""
        page = (await client.get("/workorders", params={"limit": 1})).json()
        wo = page["items"][0]["workorder_id"]
        r = await client.get(f"/history/workorder/{wo}")
        assert r.status_code == 200, r.text
        items = r.json()["items"]
        assert items[0]["event_type"] == "workorder.requested"
        assert [i["occurred_at"] for i in items] == sorted(i["occurred_at"] for i in items)
        assert {i["source_system"] for i in items} == {"oa"}
        for item in items:
            record = await hub.archive.get(item["raw_ref"])
            assert record.message_id == item["message_id"] == OA.name

    async def test_item_history_from_spd(self, client: httpx.AsyncClient) -> None:
        """An item's definition and receipts are listed from the SPD exports they came from."""
        item = (await client.get("/inventory/items", params={"limit": 1})).json()["items"][0]["item_id"]
        r = await client.get(f"/history/item/{item}")
        assert r.status_code == 200, r.text
        items = r.json()["items"]
        # Business-time order: the 2024 receipts come before the master row (no business time of its own).
        assert {i["event_type"] for i in items} >= {"inventory.item_defined", "inventory.received"}
        assert {i["source_system"] for i in items} == {"spd"}

    async def test_unknown_subject_is_404(self, client: httpx.AsyncClient) -> None:
        """A subject the log never named is 404."""
        assert (await client.get("/history/asset/AST-none")).status_code == 404

    async def test_every_history_read_is_chained_on_the_audit_ledger(
        self, client: httpx.AsyncClient, hub: Hub
    ) -> None:
        """A read becomes an audit.access_recorded event on the bus, then an entry the ledger verifies."""
        item = (await client.get("/inventory/items", params={"limit": 1})).json()["items"][0]["item_id"]
        assert (
            await client.get(f"/history/item/{item}", headers={"X-Hub-Purpose": "recall"})
        ).status_code == 200
        await drain(hub)
        with hub.engine.connect() as conn:
            rows = conn.execute(
                select(entries.c.event_type, entries.c.subject, entries.c.entry_bytes).where(
                    entries.c.topic == "audit.access.v1"
                )
            ).all()
        [(event_type, subject, data)] = rows
        assert (event_type, subject) == ("audit.access_recorded", "anonymous")
        access = json.loads(bytes(data))["payload"]
        assert (access["action"], access["resource"], access["purpose"]) == (
            "history.read",
            f"item/{item}",
            "recall",
        )
        report = verify(hub.engine)
        assert report.intact, report.findings
