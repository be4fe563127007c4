"""A FHIR resource first posted to the wrong endpoint (400), then resent correctly, is accepted once.

The archive keeps one record per content; before, the corrected resend was translated with the
first request's metadata (the wrong resource type) and answered 500 on every try.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from hub.api.app import build_api
from hub.bootstrap import Hub, build_hub
from hub.pipeline import drain
from hub.settings import Settings
from tests.e2e.conftest import REPO

DEVICE = REPO / "examples" / "fhir" / "device-ventilator-icu.json"
FHIR_JSON = {"Content-Type": "application/fhir+json"}


@pytest.fixture
async def hub(tmp_path: Path) -> AsyncIterator[Hub]:
    async with build_hub(Settings(data_dir=tmp_path / "hub")) as h:
        yield h


@pytest.fixture
async def client(hub: Hub) -> AsyncIterator[httpx.AsyncClient]:
    app = build_api(hub)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://hub") as c,
    ):
        yield c


async def registered_events(hub: Hub) -> int:
    reader = await hub.bus.consumer(["canonical.asset.v1"], group=None)
    count = 0
    while batch := await reader.poll(max_records=500, timeout_s=0.3):
        count += sum(1 for r in batch if b'"asset.registered"' in r.value)
    await reader.close()
    return count


@pytest.mark.parametrize("drained_between", [True, False], ids=["dead-lettered-first", "still-pending"])
async def test_corrected_resend_after_wrong_endpoint_is_accepted_once(
    client: httpx.AsyncClient, hub: Hub, drained_between: bool
) -> None:
    body = DEVICE.read_bytes()
    wrong = await client.post("/fhir/Location", content=body, headers=FHIR_JSON)
    assert wrong.status_code == 400, wrong.text
    if drained_between:
        await drain(hub)
        assert (await hub.dead_letters.counts())["fhir"]["open"] >= 1
    for _ in range(2):  # the corrected request, and its own resend
        right = await client.post("/fhir/Device", content=body, headers=FHIR_JSON)
        assert right.status_code in (200, 201), right.text
    await drain(hub)
    found = (await client.get("/assets", params={"identifier": "ZC-2021-00043"})).json()
    assert found["total"] == 1
    assert await registered_events(hub) == 1
    assert (await hub.dead_letters.counts()).get("fhir", {}).get("open", 0) == 0
    assert (await hub.archive.reconciliation())["fhir"]["received"] == 1
