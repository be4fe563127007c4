"""Identifiers resolved through their namespace, end to end (real wiring: build_hub + build_api).

The HRP ledger registers the ventilator ZC-2013-00031 (ICU, 在用). An equipment status naming it
as `ZC-2013-00031^HRP` (EQU-1, an EI whose namespace is the HRP) must land on the card itself,
over MLLP, so the emergency availability board stops counting it as ready; the same through a
FHIR Device whose identifier system the FHIR mapping lists as the HRP card.
"""

from __future__ import annotations

import asyncio
import json
from typing import TYPE_CHECKING, Any

from adapters.his.mllp import MllpFramer, frame
from hub.cli.operate import _start_mllp
from hub.pipeline import drain
from tests.e2e.conftest import REPO, Wired, free_port, wired_hub

if TYPE_CHECKING:
    from pathlib import Path

LEDGER = REPO / "examples" / "hrp" / "固定资产台账_2024.csv"
CARD = "ZC-2013-00031"
HRP_SYSTEM = "http://hospital.example.cn/fhir/sid/hrp-card"  # hrp.card in the bundled FHIR mapping


def esu(card_field: str, state: str = "ES^E-stopped^HL70365", control_id: str = "ESU-NS-1") -> bytes:
    return (
        "MSH|^~\\&|MONITOR_GW|ICU|HUB|XXRMYY|20240701101500||ESU^U01^ESU_U01|"
        f"{control_id}|P|2.5\r"
        f"EQU|{card_field}|20240701101455|{state}|L^Local|H^High\r"
    ).encode()


async def send_mllp(port: int, payload: bytes) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    framer = MllpFramer()
    try:
        writer.write(frame(payload))
        await writer.drain()
        while True:
            data = await asyncio.wait_for(reader.read(65536), timeout=30)
            assert data, "the hub closed the connection instead of answering"
            if got := framer.feed(data):
                return got[0]
    finally:
        writer.close()
        await writer.wait_closed()


async def ventilator(w: Wired) -> dict[str, Any]:
    found = (await w.http.get("/assets", params={"identifier": CARD})).json()["items"]
    assert len(found) == 1, found
    return dict(found[0])


async def ready_cards(w: Wired) -> set[str]:
    """HRP cards of the ventilators /availability/devices counts as ready."""
    body = (
        await w.http.get("/availability/devices", params={"type": "呼吸机", "availability": "ready"})
    ).json()
    cards = set()
    for item in body["items"]:
        record = (await w.http.get(f"/assets/{item['asset_id']}")).json()
        cards |= {i["value"] for i in record["identifiers"] if i["scheme"] == "hrp.card"}
    return cards


async def icu_ready(w: Wired) -> int:
    body = (await w.http.get("/availability", params={"type": "呼吸机"})).json()
    return sum(d["ready"] for d in body["items"] if d["department_name"] == "重症医学科")


async def test_esu_naming_the_card_by_its_hrp_namespace_takes_it_out_of_the_ready_count(
    tmp_path: Path,
) -> None:
    settings = {"auth": "off", "mllp_port": free_port()}
    async with wired_hub(tmp_path / "hub", settings=settings) as w:
        await w.ingest("hrp", LEDGER)
        before = await ventilator(w)
        assert before["status"] == "in_use"
        assert CARD in await ready_cards(w)
        ready_before = await icu_ready(w)

        server = await _start_mllp(w.hub)
        try:
            ack = await send_mllp(w.hub.settings.mllp_port, esu(f"{CARD}^HRP"))
        finally:
            server.close()
        assert b"MSA|AA|ESU-NS-1" in ack
        await drain(w.hub)

        after = await ventilator(w)
        assert after["asset_id"] == before["asset_id"], "the status landed on the card's own record"
        assert after["status"] == "under_repair"
        assert CARD not in await ready_cards(w)
        assert await icu_ready(w) == ready_before - 1
        listed = (await w.http.get("/assets", params={"status": "under_repair"})).json()["items"]
        assert before["asset_id"] in {a["asset_id"] for a in listed}
        # No provisional record was made for `ZC-2013-00031` as a HIS code.
        assert (await w.http.get("/assets", params={"identifier": f"his.code:{CARD}"})).json()["items"] == []


async def test_fhir_device_with_the_hrp_card_system_takes_it_out_of_the_ready_count(tmp_path: Path) -> None:
    async with wired_hub(tmp_path / "hub", settings={"auth": "off"}) as w:
        await w.ingest("hrp", LEDGER)
        before = await ventilator(w)
        assert CARD in await ready_cards(w)
        device = {
            "resourceType": "Device",
            "id": "vent-icu-31",
            "identifier": [{"system": HRP_SYSTEM, "value": CARD}],
            "status": "active",
            "availabilityStatus": {
                "coding": [{"system": "http://hl7.org/fhir/device-availability-status", "code": "damaged"}]
            },
            "manufacturer": "德尔格",
            "modelNumber": "Savina 300",
        }
        response = await w.http.post(
            "/fhir/Device",
            content=json.dumps(device, ensure_ascii=False).encode(),
            headers={"Content-Type": "application/fhir+json"},
        )
        assert response.status_code in {200, 201}, response.text
        await drain(w.hub)

        after = await ventilator(w)
        assert after["asset_id"] == before["asset_id"]
        assert after["status"] == "under_repair"
        assert CARD not in await ready_cards(w)


async def post_fhir(w: Wired, body: dict[str, Any]) -> None:
    kind = body["resourceType"]
    response = await w.http.post(
        "/fhir" if kind == "Bundle" else f"/fhir/{kind}",
        content=json.dumps(body, ensure_ascii=False).encode(),
        headers={"Content-Type": "application/fhir+json"},
    )
    assert response.status_code in {200, 201}, response.text


async def test_fhir_identifiers_of_unlisted_systems_and_server_local_ids(tmp_path: Path) -> None:
    """An identifier of a system the mapping does not list is kept and found by its value; two
    servers' `Device/1` stay two assets."""
    async with wired_hub(tmp_path / "hub", settings={"auth": "off"}) as w:
        tagged = {
            "resourceType": "Device",
            "id": "1",
            "meta": {"source": "http://pump-gw.example/fhir"},
            "identifier": [{"system": "urn:vendor:asset-tag", "value": "TAG-77120"}],
            "status": "active",
        }
        await post_fhir(w, tagged)
        for server in ("http://a.example/fhir", "http://b.example/fhir"):
            bundle = {
                "resourceType": "Bundle",
                "type": "batch",
                "entry": [
                    {
                        "fullUrl": f"{server}/Device/1",
                        "resource": {"resourceType": "Device", "id": "1", "status": "active"},
                        "request": {"method": "PUT", "url": "Device/1"},
                    }
                ],
            }
            await post_fhir(w, bundle)
        await drain(w.hub)

        found = (await w.http.get("/assets", params={"identifier": "TAG-77120"})).json()["items"]
        assert len(found) == 1
        linked = {(i["scheme"], i["value"]) for i in found[0]["identifiers"]}
        assert ("ns", "urn:vendor:asset-tag|TAG-77120") in linked
        ones = []
        for server in ("http://pump-gw.example/fhir", "http://a.example/fhir", "http://b.example/fhir"):
            items = (await w.http.get("/assets", params={"identifier": f"{server}/Device/1"})).json()["items"]
            ones += [a["asset_id"] for a in items]
        assert len(set(ones)) == 3, "each server's Device/1 is its own asset"
        assert found[0]["asset_id"] == ones[0], "the tagged device is keyed by its tag, with its id linked"


DFT = (
    REPO / "examples" / "his" / "01_dft_p03_ptca_prt_utf8.hl7"
)  # FT1-7 HC0302^药物洗脱支架, UDI serial SN7781


async def test_a_charge_names_its_item_in_the_trace_and_the_catalogue(tmp_path: Path) -> None:
    """DFT^P03 FT1-7 code and text reach inventory.consumed, the catalogue (an item defined from
    the charge, flagged provisional, with the GTIN its UDI carried) and /inventory/trace."""
    async with wired_hub(tmp_path / "hub", settings={"auth": "off"}) as w:
        await w.ingest("his", DFT)
        (unit,) = (await w.http.get("/inventory/trace/SN7781")).json()["units"]
        assert (unit["item_code"], unit["item_name"], unit["status"]) == (
            "HC0302",
            "药物洗脱支架",
            "consumed",
        )
        items = (await w.http.get("/inventory/items")).json()["items"]
        stent = next(i for i in items if i["item_code"] == "HC0302")
        assert (stent["name"], stent["gtin"], stent["provisional"]) == (
            "药物洗脱支架",
            "06938123450027",
            True,
        )
