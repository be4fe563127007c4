"""HTTP ingest as a sender uses it: exports over POST /ingest/{system}, FHIR over POST /fhir.

In-process: the real app on a real data dir (archive, embedded bus, SQLite read models), driven
with httpx over ASGI; the pipeline is drained between requests as `hub serve` would run it.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from hub.bootstrap import Hub
from hub.pipeline import drain
from tests.e2e.conftest import REPO, Wired, wired_hub

FHIR = REPO / "examples" / "fhir"
LEDGER = REPO / "examples" / "hrp" / "固定资产台账_2024.csv"
FHIR_JSON = {"Content-Type": "application/fhir+json"}


@pytest.fixture
async def wired(tmp_path: Path) -> AsyncIterator[Wired]:
    """The real wiring, keys off (callers act as admin), a 200 kB body limit."""
    async with wired_hub(tmp_path / "hub", settings={"auth": "off", "max_file_bytes": 200_000}) as w:
        yield w


@pytest.fixture
def hub(wired: Wired) -> Hub:
    return wired.hub


@pytest.fixture
def client(wired: Wired) -> httpx.AsyncClient:
    return wired.http


class TestIngestExports:
    async def test_upload_is_archived_then_translated(self, client: httpx.AsyncClient, hub: Hub) -> None:
        """A 202 names the raw ref; after the pipeline runs, its status shows events and dead letters."""
        r = await client.post("/ingest/hrp", params={"filename": LEDGER.name}, content=LEDGER.read_bytes())
        assert r.status_code == 202, r.text
        ref = r.json()["raw_ref"]
        assert await hub.archive.payload(ref) == LEDGER.read_bytes()
        await drain(hub)
        status = (await client.get(r.json()["status_url"])).json()
        assert status["status"] == "dead_lettered"
        assert status["events"] == 524
        assert {d["position"] for d in status["dead_letters"]} >= {"line:41", "line:309"}
        assert all(d["location"]["file"] == LEDGER.name for d in status["dead_letters"])
        assets = (await client.get("/assets", params={"limit": 1})).json()
        assert assets["total"] == 524

    async def test_resend_is_recognised(self, client: httpx.AsyncClient) -> None:
        """The same body twice is one raw message, the second answer flagged duplicate."""
        body = LEDGER.read_bytes()
        first = (await client.post("/ingest/hrp", content=body)).json()
        second = (await client.post("/ingest/hrp", content=body)).json()
        assert second["raw_ref"] == first["raw_ref"]
        assert (first["duplicate"], second["duplicate"]) == (False, True)

    async def test_oversized_body_is_refused_before_storing(
        self, client: httpx.AsyncClient, hub: Hub
    ) -> None:
        """A body over HUB_MAX_FILE_BYTES answers 413 and leaves nothing in the archive."""
        r = await client.post("/ingest/hrp", content=b"x" * 200_001)
        assert r.status_code == 413
        assert "limit" in r.json()["detail"]
        assert await hub.archive.reconciliation() == {}

    async def test_unknown_system_is_404(self, client: httpx.AsyncClient) -> None:
        """A system the hub has no adapter for is named in the refusal."""
        r = await client.post("/ingest/lis", content=b"a,b\n")
        assert r.status_code == 404
        assert "lis" in r.json()["detail"]


class TestFhir:
    async def test_device_is_created(self, client: httpx.AsyncClient, hub: Hub) -> None:
        """A valid Device answers 201 with an OperationOutcome, and lands in the registry."""
        r = await client.post(
            "/fhir/Device", content=(FHIR / "device-ventilator-icu.json").read_bytes(), headers=FHIR_JSON
        )
        assert r.status_code == 201, r.text
        assert r.json()["resourceType"] == "OperationOutcome"
        await drain(hub)
        found = (await client.get("/assets", params={"identifier": "ZC-2021-00043"})).json()
        assert found["total"] == 1

    async def test_invalid_resource_names_the_element_and_is_kept(
        self, client: httpx.AsyncClient, hub: Hub
    ) -> None:
        """A Device with a wrong-typed element answers 400 naming it, and its bytes are archived."""
        doc = json.loads((FHIR / "device-ventilator-icu.json").read_text(encoding="utf-8"))
        doc["serialNumber"] = {"not": "a string"}
        r = await client.post("/fhir/Device", content=json.dumps(doc).encode(), headers=FHIR_JSON)
        assert r.status_code == 400
        issues = r.json()["issue"]
        assert any("serialNumber" in json.dumps(i) for i in issues)
        assert (await hub.archive.reconciliation())["fhir"]["received"] == 1

    async def test_batch_lands_good_entries(self, client: httpx.AsyncClient, hub: Hub) -> None:
        """A batch with one bad entry answers a batch-response: the bad entry 400, the others land."""
        r = await client.post(
            "/fhir", content=(FHIR / "bundle-batch-one-bad-entry.json").read_bytes(), headers=FHIR_JSON
        )
        assert r.status_code == 200, r.text
        statuses = [e["response"]["status"] for e in r.json()["entry"]]
        assert statuses[1].startswith("400")
        assert statuses[0].startswith("201")
        assert statuses[3].startswith("201")
        await drain(hub)
        letters = await hub.dead_letters.query(system="fhir")
        assert [d.position for d in letters] == ["entry:1"]

    async def test_transaction_with_a_bad_entry_lands_nothing(
        self, client: httpx.AsyncClient, hub: Hub
    ) -> None:
        """A transaction whose entry fails answers 400 and publishes no event of any entry."""
        bundle = json.loads((FHIR / "bundle-transaction.json").read_text(encoding="utf-8"))
        bundle["entry"][0]["resource"]["serialNumber"] = {"not": "a string"}
        r = await client.post("/fhir", content=json.dumps(bundle).encode(), headers=FHIR_JSON)
        assert r.status_code == 400, r.text
        await drain(hub)
        recon = (await hub.archive.reconciliation())["fhir"]
        assert recon["events"] == 0
        assert recon["dead_lettered"] == 1
