"""GET /assets/{id}?as_of=&known_at= answers from the log as the record stood (bitemporal)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.e2e.conftest import REPO, Wired, wired_hub

LEDGER = REPO / "examples" / "hrp" / "固定资产台账_2024.csv"
UPDATED = REPO / "examples" / "hrp" / "固定资产台账_2024_更新.csv"


@pytest.fixture
async def wired(tmp_path: Path) -> AsyncIterator[Wired]:
    async with wired_hub(tmp_path / "hub", settings={"auth": "off"}) as w:
        yield w


async def test_as_of_known_at_separates_before_and_after_a_correction(wired: Wired) -> None:
    """Known before the re-export, the asset is 在用; known after it, under repair; today's view agrees."""
    await wired.ingest("hrp", LEDGER)
    between = datetime.now(UTC)
    await wired.ingest("hrp", UPDATED)  # line 76, ZC-2013-00025: 在用 -> 维修
    client = wired.http
    found = (await client.get("/assets", params={"identifier": "ZC-2013-00025"})).json()["items"][0]
    asset_id = found["asset_id"]
    later = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    before = await client.get(f"/assets/{asset_id}", params={"as_of": later, "known_at": between.isoformat()})
    after = await client.get(f"/assets/{asset_id}", params={"as_of": later, "known_at": later})
    live = await client.get(f"/assets/{asset_id}")
    assert before.status_code == after.status_code == 200
    assert before.json()["status"] == "in_use"
    assert after.json()["status"] == "under_repair"
    assert live.json()["status"] == "under_repair"


async def test_as_of_an_unknown_asset_is_404(wired: Wired) -> None:
    """An id the log never named answers 404 as of any time, like the live view."""
    r = await wired.http.get("/assets/AST-x", params={"as_of": "2024-01-01T00:00:00+08:00"})
    assert r.status_code == 404
