"""GET /dlq and POST /dlq/retry: an integrator sees what failed and lands it after a mapping fix."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from hub.api.app import create_app
from hub.api.security import Security
from hub.auth.keys import KeyStore
from hub.auth.roles import Role
from hub.bootstrap import Hub, build_hub
from hub.dlq_retry import HubDeadLetters
from hub.pipeline import drain, ingest_path
from hub.settings import Settings
from tests.e2e.conftest import REPO

LEDGER = REPO / "examples" / "hrp" / "固定资产台账_2024.csv"
FIX = REPO / "examples" / "hrp" / "mapping_fix.yaml"


@pytest.fixture
async def hub(tmp_path: Path) -> AsyncIterator[Hub]:
    mappings = tmp_path / "mappings"
    mappings.mkdir()
    async with build_hub(Settings(data_dir=tmp_path / "hub", mapping_dir=mappings)) as h:
        await ingest_path(h, "hrp", LEDGER)
        await drain(h)
        yield h


@pytest.fixture
async def client(hub: Hub) -> AsyncIterator[tuple[httpx.AsyncClient, dict[str, str]]]:
    keys = KeyStore(hub.engine)
    tokens = {role.value: keys.create(role)[1] for role in (Role.INTEGRATOR, Role.VIEWER)}

    async def nowhere(_: object) -> None:
        raise AssertionError("no sensitive read here")

    app = create_app(
        engine=hub.engine,
        dead_letters=HubDeadLetters(hub),
        security=Security(keys=keys, required=True, access_log=nowhere),
        projections=[r.projection for r in hub.runners],
    )
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://hub") as c,
    ):
        yield c, tokens


class TestDeadLettersApi:
    async def test_list_then_fix_the_mapping_and_retry(
        self, client: tuple[httpx.AsyncClient, dict[str, str]], hub: Hub
    ) -> None:
        """Six failures with where and why; after mapping_fix.yaml, retry resolves the two date rows."""
        http, tokens = client
        integrator = {"Authorization": f"Bearer {tokens['integrator']}"}
        listed = await http.get("/dlq", params={"system": "hrp"}, headers=integrator)
        assert listed.status_code == 200, listed.text
        items = listed.json()["items"]
        assert len(items) == 6
        assert all(
            i["location"]["line"] >= 4 and i["reason"] and i["raw_ref"].startswith("hrp:") for i in items
        )
        assert all("excerpt" not in i for i in items)  # may hold patient data: not served

        viewer = {"Authorization": f"Bearer {tokens['viewer']}"}
        assert (await http.get("/dlq", headers=viewer)).status_code == 403
        assert (await http.post("/dlq/retry", headers=viewer)).status_code == 403

        shutil.copy(FIX, hub.settings.mapping_dir / "hrp.yaml")  # type: ignore[operator]
        await asyncio.sleep(1.1)  # mappings are re-read when their mtime changes, checked each second
        retried = await http.post("/dlq/retry", params={"system": "hrp"}, headers=integrator)
        assert retried.status_code == 200, retried.text
        assert retried.json() == {"retried": 1, "resolved": 2, "still_open": 4}
        still = (await http.get("/dlq", params={"system": "hrp"}, headers=integrator)).json()
        assert still["total"] == 4
        resolved = (await http.get("/dlq", params={"status": "resolved"}, headers=integrator)).json()
        assert resolved["total"] == 2

    async def test_without_a_hub_the_route_says_so(self, hub: Hub) -> None:
        app = create_app(engine=hub.engine)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://hub") as c:
            assert (await c.get("/dlq")).status_code == 503
