"""GET /assets/{id}?as_of=&known_at= answers from the log as the record stood (bitemporal)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.e2e.conftest import REPO, Wired, wired_hub
from tests.unit.audit.log_tamper import LogFile

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


@pytest.mark.wire_unchecked  # the log is edited behind the hub's back, on purpose
async def test_as_of_refuses_a_log_record_that_no_longer_matches_the_ledger(wired: Wired) -> None:
    """An `asset.registered` record edited in the log: the as-of view answers 409 naming the ledger,
    instead of reconstructing the device from bytes the audit ledger does not vouch for."""
    await wired.ingest("hrp", LEDGER)
    found = (await wired.http.get("/assets", params={"identifier": "ZC-2013-00025"})).json()["items"][0]
    asset_id = found["asset_id"]
    later = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    assert (await wired.http.get(f"/assets/{asset_id}", params={"as_of": later})).status_code == 200
    log = LogFile(wired.hub.settings.bus_path)
    topic = f"{wired.hub.settings.topic_prefix}canonical.asset.v1"
    edited = 0
    for partition in range(16):
        for offset in range(2000):
            try:
                value = log.value(topic, partition, offset)
            except TypeError:  # past the partition's last record
                break
            if b"ZC-2013-00025" in value:
                log.edit_value(
                    topic, partition, offset, lambda v: v.replace(b"ZC-2013-00025", b"ZC-2013-00099")
                )
                edited += 1
    assert edited, "the card's records were found on the log"
    r = await wired.http.get(f"/assets/{asset_id}", params={"as_of": later})
    assert r.status_code == 409, r.text
    assert "audit ledger" in r.json()["detail"]
    assert (await wired.http.get(f"/assets/{asset_id}")).status_code == 200  # the live view still serves
