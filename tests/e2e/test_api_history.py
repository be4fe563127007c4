"""GET /history/{kind}/{id}: any subject's events from the log, each with its source and raw reference."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from hub.api.app import create_app
from hub.api.security import Security, bus_access_log
from hub.bootstrap import Hub, build_hub
from hub.pipeline import drain, ingest_path
from hub.settings import Settings
from projections.audit_ledger import entries
from replay.audit import verify
from replay.history import HistoryEntry, SubjectKind, history
from tests.e2e.conftest import REPO

OA = REPO / "examples" / "oa" / "工单导出_2024Q2.json"
SPD = REPO / "examples" / "spd"


@pytest.fixture
async def hub(tmp_path: Path) -> AsyncIterator[Hub]:
    async with build_hub(Settings(data_dir=tmp_path / "hub")) as h:
        await ingest_path(h, "oa", OA)
        for name in ("01_物资字典.csv", "03_入库单_2024Q2.csv"):
            await ingest_path(h, "spd", SPD / name)
        await drain(h)
        yield h


@pytest.fixture
async def client(hub: Hub) -> AsyncIterator[httpx.AsyncClient]:
    async def reader(
        kind: SubjectKind, subject: str, since: datetime | None, derived: bool
    ) -> list[HistoryEntry]:
        return await history(
            hub.bus, kind, subject, since=since, include_derived=derived, raw_lookup=hub.archive.lookup
        )

    app = create_app(
        engine=hub.engine,
        history_reader=reader,
        projections=[r.projection for r in hub.runners],
        security=Security.open(access_log=bus_access_log(hub.bus)),
    )
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://hub") as c,
    ):
        yield c


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

    async def test_unknown_subject_is_404_and_no_log_is_503(
        self, client: httpx.AsyncClient, hub: Hub
    ) -> None:
        """A subject the log never named is 404; an API process without the log says 503."""
        assert (await client.get("/history/asset/AST-none")).status_code == 404
        bare = create_app(engine=hub.engine)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=bare), base_url="http://hub") as c:
            assert (await c.get("/history/asset/AST-none")).status_code == 503

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
