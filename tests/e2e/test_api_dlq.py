"""GET /dlq and POST /dlq/retry: an integrator sees what failed and lands it after a mapping fix."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from hub.auth.roles import Role
from hub.bootstrap import Hub
from tests.e2e.conftest import REPO, Wired, wired_hub

LEDGER = REPO / "examples" / "hrp" / "固定资产台账_2024.csv"
FIX = REPO / "examples" / "hrp" / "mapping_fix.yaml"


@pytest.fixture
async def wired(tmp_path: Path) -> AsyncIterator[Wired]:
    mappings = tmp_path / "mappings"
    mappings.mkdir()
    async with wired_hub(tmp_path / "hub", settings={"mapping_dir": mappings}) as w:
        await w.ingest("hrp", LEDGER)
        yield w


@pytest.fixture
def hub(wired: Wired) -> Hub:
    return wired.hub


@pytest.fixture
def client(wired: Wired) -> tuple[httpx.AsyncClient, dict[str, str]]:
    tokens = {role.value: wired.token(role) for role in (Role.INTEGRATOR, Role.VIEWER)}
    return wired.http, tokens


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


class TestGroupsAndRetryMatching:
    async def test_grouped_by_reason_with_the_mapping_in_use_then_all_matching_retried(
        self, client: tuple[httpx.AsyncClient, dict[str, str]], hub: Hub
    ) -> None:
        """Groups add up to the list; a code filter pages one group; retry-all-matching lands it after the fix."""
        http, tokens = client
        integrator = {"Authorization": f"Bearer {tokens['integrator']}"}
        grouped = (await http.get("/dlq/groups", params={"system": "hrp"}, headers=integrator)).json()
        assert grouped["total"] == 6 == sum(g["count"] for g in grouped["groups"])
        dates = next(g for g in grouped["groups"] if g["code"] == "invalid_date")
        assert dates["count"] == 3  # two day-first dates, one 30 February
        hrp = next(m for m in grouped["mappings"] if m["system"] == "hrp")
        assert hrp["overridden"] is False
        assert dates["mapping_versions"] == [hrp["version"]]
        one_code = (
            await http.get("/dlq", params={"code": "invalid_date", "limit": 1}, headers=integrator)
        ).json()
        assert one_code["total"] == 3
        assert [i["code"] for i in one_code["items"]] == ["invalid_date"]

        shutil.copy(FIX, hub.settings.mapping_dir / "hrp.yaml")  # type: ignore[operator]
        await asyncio.sleep(1.1)  # mappings are re-read when their mtime changes, checked each second
        fixed = (await http.get("/dlq/groups", headers=integrator)).json()
        in_use = next(m for m in fixed["mappings"] if m["system"] == "hrp")
        assert in_use["overridden"] is True
        assert in_use["version"] != hrp["version"]
        retried = await http.post(
            "/dlq/retry/matching", json={"system": "hrp", "code": "invalid_date"}, headers=integrator
        )
        assert retried.status_code == 200, retried.text
        assert retried.json() == {"matched": 1, "retried": 1, "resolved": 2, "still_open": 4}
        after = (await http.get("/dlq/groups", headers=integrator)).json()
        assert after["total"] == 4
        assert next(g for g in after["groups"] if g["code"] == "invalid_date")["count"] == 1  # 30 February

    async def test_retry_selected_refuses_an_unknown_message_and_a_viewer(
        self, client: tuple[httpx.AsyncClient, dict[str, str]]
    ) -> None:
        """Selected raw refs are checked one by one: an unknown one is a 404; a viewer gets 403."""
        http, tokens = client
        integrator = {"Authorization": f"Bearer {tokens['integrator']}"}
        ref = (await http.get("/dlq", headers=integrator)).json()["items"][0]["raw_ref"]
        ok = await http.post("/dlq/retry/matching", json={"raw_refs": [ref, ref]}, headers=integrator)
        assert ok.status_code == 200, ok.text
        assert ok.json()["matched"] == 1
        assert ok.json()["still_open"] == 6
        missing = await http.post(
            "/dlq/retry/matching", json={"raw_refs": [ref, "hrp:nosuch"]}, headers=integrator
        )
        assert missing.status_code == 404
        viewer = {"Authorization": f"Bearer {tokens['viewer']}"}
        assert (await http.post("/dlq/retry/matching", json={}, headers=viewer)).status_code == 403
        assert (await http.get("/dlq/groups", headers=viewer)).status_code == 403
