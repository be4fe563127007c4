"""GET /assets/{id}?as_of=&known_at= answers from the log as the record stood (bitemporal)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from hub.api.app import create_app
from hub.bootstrap import Hub, build_hub
from hub.pipeline import drain, ingest_path
from hub.settings import Settings
from replay.as_of import asset_as_of
from tests.e2e.conftest import REPO

LEDGER = REPO / "examples" / "hrp" / "固定资产台账_2024.csv"
UPDATED = REPO / "examples" / "hrp" / "固定资产台账_2024_更新.csv"


@pytest.fixture
async def hub(tmp_path: Path) -> AsyncIterator[Hub]:
    async with build_hub(Settings(data_dir=tmp_path / "hub")) as h:
        yield h


async def test_as_of_known_at_separates_before_and_after_a_correction(hub: Hub) -> None:
    """Known before the re-export, the asset is 在用; known after it, under repair; today's view agrees."""
    await ingest_path(hub, "hrp", LEDGER)
    await drain(hub)
    between = datetime.now(UTC)
    await ingest_path(hub, "hrp", UPDATED)  # line 76, ZC-2013-00025: 在用 -> 维修
    await drain(hub)

    async def reader(asset_id: str, occurred_at: datetime, known_at: datetime) -> dict[str, Any] | None:
        return await asset_as_of(hub.bus, asset_id, occurred_at=occurred_at, known_at=known_at)

    app = create_app(engine=hub.engine, as_of_reader=reader, projections=[r.projection for r in hub.runners])
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://hub") as client,
    ):
        found = (await client.get("/assets", params={"identifier": "ZC-2013-00025"})).json()["items"][0]
        asset_id = found["asset_id"]
        later = (datetime.now(UTC) + timedelta(days=1)).isoformat()
        before = await client.get(
            f"/assets/{asset_id}", params={"as_of": later, "known_at": between.isoformat()}
        )
        after = await client.get(f"/assets/{asset_id}", params={"as_of": later, "known_at": later})
        live = await client.get(f"/assets/{asset_id}")
    assert before.status_code == after.status_code == 200
    assert before.json()["status"] == "in_use"
    assert after.json()["status"] == "under_repair"
    assert live.json()["status"] == "under_repair"


async def test_without_a_log_reader_as_of_is_503(hub: Hub) -> None:
    """A read-only API process (no event log) says it cannot answer as-of queries."""
    app = create_app(engine=hub.engine)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://hub") as client,
    ):
        r = await client.get("/assets/AST-x", params={"as_of": "2024-01-01T00:00:00+08:00"})
    assert r.status_code == 503
