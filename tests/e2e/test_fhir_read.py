"""The FHIR read facade as a SMART-style client uses it: metadata, searches, reads, paging, in R5
and R4B, JSON and XML, with the roles and department scope of the hub.

Over the real wiring with the sample HRP ledger, SPD exports, OA work orders and one FHIR Device
(with a UDI) loaded once; every answer is parsed with fhir.resources in the release it claims,
and the R4B ones also with fhirclient's models (a real client library).
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import httpx
import pytest
import pytest_asyncio
from fhir.resources import get_fhir_model_class
from fhir.resources.R4B import get_fhir_model_class as get_r4b_class
from fhirclient import client
from fhirclient.models import fhirelementfactory
from fhirclient.models.device import Device
from fhirclient.models.fhirsearch import FHIRSearch

from hub.auth.roles import Role
from hub.pipeline import drain
from tests.e2e.conftest import REPO, Wired, wired_hub
from tests.e2e.fhir_client import HubAdapter

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

pytestmark = pytest.mark.asyncio(loop_scope="module")

HRP_CARD = "urn:hospital-hub:id:hrp.card"
GS1 = "http://hl7.org/fhir/NamingSystem/gs1-di"
PUMP = REPO / "examples" / "fhir" / "device-infusion-pump-aidc.json"
PUMP_CARD, PUMP_DI = "ZC-2021-00016", "06943243106747"
R4B = {"Accept": "application/fhir+json; fhirVersion=4.3"}


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def hub(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Wired]:
    async with wired_hub(tmp_path_factory.mktemp("fhir") / "hub") as w:
        await w.ingest("hrp", REPO / "examples" / "hrp" / "固定资产台账_2024.csv")
        await w.ingest("spd", *sorted((REPO / "examples" / "spd").glob("0*")))
        await w.ingest("oa", REPO / "examples" / "oa" / "工单导出_2024Q2.json")
        created = await w.http.post(
            "/fhir/Device",
            content=PUMP.read_bytes(),
            headers={**w.auth(Role.INTEGRATOR), "Content-Type": "application/fhir+json"},
        )
        assert created.status_code == 201, created.text
        w.created = created  # type: ignore[attr-defined]
        await drain(w.hub)
        yield w


def valid(response: httpx.Response, resource_type: str | None = None) -> dict[str, Any]:
    """The JSON body, after fhir.resources accepted it in the release its Content-Type names."""
    content_type = response.headers["content-type"]
    assert content_type.startswith("application/fhir+json"), content_type
    body: dict[str, Any] = response.json()
    if resource_type:
        assert body["resourceType"] == resource_type
    if "fhirVersion=4.3" in content_type:
        get_r4b_class(body["resourceType"]).model_validate(body)
        _fhirclient(body)
    else:
        assert "fhirVersion=5.0" in content_type
        get_fhir_model_class(body["resourceType"]).model_validate(body)
    return body


def _fhirclient(body: dict[str, Any]) -> None:
    """fhirclient (R4 models) reads the R4B answer too: what a SMART app on fhirclient gets."""
    fhirelementfactory.FHIRElementFactory.instantiate(body["resourceType"], body)


async def get(
    hub: Wired, url: str, role: Role = Role.VIEWER, dept: str | None = None, **kw: Any
) -> httpx.Response:
    headers = {**hub.auth(role, dept), **kw.pop("headers", {})}
    return await hub.http.get(url, headers=headers, **kw)


async def _card(hub: Wired) -> tuple[str, str, str]:
    """A device of the ledger: its asset id, HRP card number and department code."""
    page = (await get(hub, "/assets", params={"limit": 1})).json()
    asset = page["items"][0]
    detail = (await get(hub, f"/assets/{asset['asset_id']}")).json()
    card = next(i["value"] for i in detail["identifiers"] if i["scheme"] == "hrp.card")
    return asset["asset_id"], card, detail["department_code"]


class TestSmartClient:
    @pytest.mark.parametrize("headers", [{}, R4B], ids=["R5", "R4B"])
    async def test_the_walk_a_smart_app_makes(self, hub: Wired, headers: dict[str, str]) -> None:
        """metadata -> search by HRP card and by UDI -> read -> page a search, every answer valid."""
        statement = valid(await get(hub, "/fhir/metadata", headers=headers), "CapabilityStatement")
        (rest,) = statement["rest"]
        device = next(r for r in rest["resource"] if r["type"] == "Device")
        assert {"identifier", "udi-di", "status", "location", "type", "_lastUpdated"} <= {
            p["name"] for p in device["searchParam"]
        }
        by_card = valid(
            await get(hub, "/fhir/Device", params={"identifier": f"{HRP_CARD}|{PUMP_CARD}"}, headers=headers)
        )
        by_udi = valid(
            await get(hub, "/fhir/Device", params={"identifier": f"{GS1}|{PUMP_DI}"}, headers=headers)
        )
        by_di = valid(await get(hub, "/fhir/Device", params={"udi-di": PUMP_DI}, headers=headers))
        ids = {b["total"]: b["entry"][0]["resource"]["id"] for b in (by_card, by_udi, by_di)}
        assert list(ids) == [1], "each search finds exactly the one pump"
        (pump_id,) = ids.values()
        url = by_card["entry"][0]["fullUrl"]
        pump = valid(await get(hub, urlsplit(url).path, headers=headers), "Device")
        assert pump["udiCarrier"][0]["deviceIdentifier"] == PUMP_DI
        assert pump["id"] == pump_id
        first = valid(await get(hub, "/fhir/Device", params={"_count": 3}, headers=headers))
        links = {link["relation"]: link["url"] for link in first["link"]}
        assert "previous" not in links
        second = valid(await hub.http.get(links["next"], headers={**hub.auth(Role.VIEWER), **headers}))
        assert {e["resource"]["id"] for e in second["entry"]}.isdisjoint(
            e["resource"]["id"] for e in first["entry"]
        )
        assert "previous" in {link["relation"] for link in second["link"]}

    async def test_fhirclient_prepares_searches_reads_and_pages(self, hub: Wired) -> None:
        """fhirclient (R4 models), as a SMART app uses it: prepare() reads the CapabilityStatement,
        searches by HRP card and by UDI, reads the device, follows the next links of a search."""
        r4b = "application/fhir+json;fhirVersion=4.3"
        loop = asyncio.get_running_loop()

        def walk() -> tuple[list[str], str, list[int]]:
            smart = client.FHIRClient(settings={"app_id": "hub-test", "api_base": "http://hub/fhir/"})
            session = smart.server.session
            session.mount("http://hub/", HubAdapter(hub.http, loop))
            session.headers["Authorization"] = f"Bearer {hub.token(Role.VIEWER)}"
            smart.prepare()
            assert smart.server.capabilityStatement.fhirVersion == "5.0.0"
            found = []
            for token in (f"{HRP_CARD}|{PUMP_CARD}", f"urn:oid:2.51.1.1|{PUMP_DI}"):
                search = FHIRSearch(Device, {"identifier": token, "_format": r4b})
                (bundle,) = list(search.perform_iter(smart.server))
                found += [entry.resource.id for entry in bundle.entry]
            device = Device.read_from(f"Device/{found[0]}?_format={r4b}", smart.server)
            pages = FHIRSearch(Device, {"type": "6854", "_count": "10", "_format": r4b})
            sizes = [len(page.entry or []) for page in pages.perform_iter(smart.server)]
            return found, device.udiCarrier[0].deviceIdentifier, sizes

        found, di, sizes = await asyncio.to_thread(walk)
        assert len(set(found)) == 1
        assert len(found) == 2
        assert di == PUMP_DI
        assert len(sizes) > 1
        assert all(size == 10 for size in sizes[:-1])
        pumps = valid(await get(hub, "/fhir/Device", params={"type": "6854", "_count": 1}))
        assert sum(sizes) == pumps["total"]

    async def test_r5_capability_lists_exactly_the_served_interactions(self, hub: Wired) -> None:
        """Each resource with its interactions; InventoryItem only in R5; no unserved type."""
        r5 = valid(await get(hub, "/fhir/metadata"))["rest"][0]["resource"]
        r4b = valid(await get(hub, "/fhir/metadata", headers=R4B))["rest"][0]["resource"]
        served = {r["type"]: {i["code"] for i in r["interaction"]} for r in r5}
        assert served["Device"] == {"read", "search-type", "create"}
        assert served["Location"] == {"read", "search-type", "create"}
        assert served["SupplyDelivery"] == {"read", "search-type", "create"}
        assert served["AuditEvent"] == {"read", "search-type"}
        assert served["SupplyRequest"] == {"create"}
        assert {"InventoryItem", "InventoryReport"} <= set(served)
        assert {"InventoryItem", "InventoryReport"}.isdisjoint(r["type"] for r in r4b)


class TestDevice:
    async def test_read_gives_every_identifier_owner_location_and_extensions(self, hub: Wired) -> None:
        asset_id, card, department = await _card(hub)
        response = await get(hub, f"/fhir/Device/{asset_id}")
        device = valid(response, "Device")
        assert (HRP_CARD, card) in {(i["system"], i["value"]) for i in device["identifier"]}
        assert device["owner"]["identifier"]["value"] == department
        assert device["location"]["reference"].startswith(f"Location/{department}")
        urls = {e["url"].rsplit("/", 1)[1] for e in device["extension"]}
        assert "device-availability" in urls
        assert response.headers["etag"] == f'W/"{device["meta"]["versionId"]}"'
        assert response.headers["last-modified"].endswith("GMT")

    async def test_if_none_match_with_the_etag_is_304(self, hub: Wired) -> None:
        asset_id, _, _ = await _card(hub)
        first = await get(hub, f"/fhir/Device/{asset_id}")
        again = await get(hub, f"/fhir/Device/{asset_id}", headers={"If-None-Match": first.headers["etag"]})
        assert again.status_code == 304
        other = await get(hub, f"/fhir/Device/{asset_id}", headers={"If-None-Match": 'W/"other"'})
        assert other.status_code == 200

    async def test_udi_and_serial_identifiers_are_searchable_by_their_systems(self, hub: Wired) -> None:
        pump = valid(await get(hub, "/fhir/Device", params={"udi-di": PUMP_DI}))["entry"][0]["resource"]
        for ident in pump["identifier"]:
            found = valid(
                await get(hub, "/fhir/Device", params={"identifier": f"{ident['system']}|{ident['value']}"})
            )
            assert [e["resource"]["id"] for e in found["entry"]] == [pump["id"]], ident
        other = await get(
            hub, "/fhir/Device", params={"identifier": f"urn:hospital-hub:id:spd.code|{PUMP_CARD}"}
        )
        assert valid(other)["total"] == 0  # the same value under another scheme

    async def test_location_status_type_and_last_updated_narrow_the_search(self, hub: Wired) -> None:
        _, _, department = await _card(hub)

        async def search(count: int = 1, **params: str) -> dict[str, Any]:
            return valid(await get(hub, "/fhir/Device", params={"_count": str(count), **params}))

        everything = await search()
        in_dept = await search(50, location=f"Location/{department}")
        assert 1 <= in_dept["total"] < everything["total"]
        assert all(e["resource"]["owner"]["identifier"]["value"] == department for e in in_dept["entry"])
        place = in_dept["entry"][0]["resource"]["location"]["reference"]
        at_place = await search(50, location=place)
        assert 1 <= at_place["total"] <= in_dept["total"]
        assert all(e["resource"]["location"]["reference"] == place for e in at_place["entry"])
        active, inactive = await search(status="active"), await search(status="inactive")
        assert active["total"] + inactive["total"] == everything["total"]
        assert 0 < inactive["total"] < everything["total"]
        kind = everything["entry"][0]["resource"]["type"][0]["coding"][0]["code"]
        of_kind = await search(50, type=kind)
        assert 1 <= of_kind["total"] < everything["total"]
        assert all(e["resource"]["type"][0]["coding"][0]["code"] == kind for e in of_kind["entry"])
        pump = (await search(**{"udi-di": PUMP_DI}))["entry"][0]["resource"]  # updated at ingest: the latest
        second = pump["meta"]["lastUpdated"][:19]  # UTC, to the second
        recent = await search(50, _lastUpdated=f"ge{second}Z")
        older = await search(_lastUpdated=f"lt{second}Z")
        assert recent["total"] + older["total"] == everything["total"]
        assert 1 <= recent["total"] < everything["total"]
        assert all(e["resource"]["meta"]["lastUpdated"] >= second for e in recent["entry"])

    async def test_r4b_device_uses_r4b_elements(self, hub: Wired) -> None:
        found = valid(await get(hub, "/fhir/Device", params={"udi-di": PUMP_DI}, headers=R4B))
        device = found["entry"][0]["resource"]
        assert device["deviceName"][0]["type"] == "user-friendly-name"
        assert "availabilityStatus" not in device
        assert isinstance(device["type"], dict)


class TestOtherResources:
    async def test_location_of_a_device_reads_and_its_department_lists_it(self, hub: Wired) -> None:
        asset_id, _, department = await _card(hub)
        device = valid(await get(hub, f"/fhir/Device/{asset_id}"))
        place = valid(await get(hub, f"/fhir/{device['location']['reference']}"), "Location")
        dept = valid(await get(hub, f"/fhir/Location/{department}"), "Location")
        assert place["partOf"]["reference"] == f"Location/{dept['id']}"
        inside = valid(await get(hub, "/fhir/Location", params={"partof": f"Location/{department}"}))
        assert place["id"] in {e["resource"]["id"] for e in inside["entry"]}
        r4b = valid(await get(hub, f"/fhir/{device['location']['reference']}", headers=R4B), "Location")
        assert "physicalType" in r4b

    async def test_inventory_item_and_report_in_r5_and_not_in_r4b(self, hub: Wired) -> None:
        items = valid(await get(hub, "/fhir/InventoryItem", params={"_count": 2}))
        item = items["entry"][0]["resource"]
        code = next(i["value"] for i in item["identifier"] if i["system"].endswith("item.code"))
        by_code = valid(await get(hub, "/fhir/InventoryItem", params={"code": code}))
        assert [e["resource"]["id"] for e in by_code["entry"]] == [item["id"]]
        assert valid(await get(hub, f"/fhir/InventoryItem/{item['id']}"), "InventoryItem")["id"] == item["id"]
        reports = valid(await get(hub, "/fhir/InventoryReport", params={"_count": 1}))
        report = valid(await get(hub, f"/fhir/InventoryReport/{reports['entry'][0]['resource']['id']}"))
        lines = [line for listing in report["inventoryListing"] for line in listing["item"]]
        assert all(line["item"]["reference"]["reference"].startswith("InventoryItem/") for line in lines)
        refused = await get(hub, f"/fhir/InventoryItem/{item['id']}", headers=R4B)
        assert refused.status_code == 406
        issue = valid(refused, "OperationOutcome")["issue"][0]
        assert (issue["code"], issue["expression"]) == ("not-supported", ["fhirVersion"])

    async def test_supply_deliveries_of_a_lot_and_the_audit_event_of_that_read(self, hub: Wired) -> None:
        report = valid(await get(hub, "/fhir/InventoryReport", params={"_count": 1}))["entry"][0]["resource"]
        line = next(
            line for listing in report["inventoryListing"] for line in listing["item"] if "extension" in line
        )
        lot = line["extension"][0]["extension"][0]["valueString"]
        for headers in ({}, R4B):
            found = valid(await get(hub, "/fhir/SupplyDelivery", params={"lot": lot}, headers=headers))
            assert found["total"] >= 1
        delivery = found["entry"][0]["resource"]
        assert delivery["status"] == "completed"
        delivered = f"/fhir/SupplyDelivery/{delivery['id']}"
        one = valid(await get(hub, delivered, headers=R4B), "SupplyDelivery")  # the last search was R4B
        assert one["suppliedItem"] == delivery["suppliedItem"]
        await drain(hub.hub)  # the access events reach the ledger
        events = valid(await get(hub, "/fhir/AuditEvent", Role.AUDITOR, params={"_count": 50}))
        ours = [
            e["resource"] for e in events["entry"]
            if e["resource"]["code"]["text"] == "fhir.supply_delivery"
            and e["resource"]["entity"][0]["what"]["identifier"]["value"] == lot
        ]  # fmt: skip
        assert ours
        one = valid(await get(hub, f"/fhir/AuditEvent/{ours[0]['id']}", Role.AUDITOR), "AuditEvent")
        assert one["agent"][0]["requestor"] is True
        valid(await get(hub, f"/fhir/AuditEvent/{ours[0]['id']}", Role.AUDITOR, headers=R4B), "AuditEvent")
        assert (await get(hub, "/fhir/AuditEvent", Role.VIEWER)).status_code == 403
        assert (await get(hub, "/fhir/AuditEvent", Role.AUDITOR, "0101")).status_code == 403

    async def test_task_from_a_work_order_focuses_its_device(self, hub: Wired) -> None:
        tasks = valid(await get(hub, "/fhir/Task", params={"status": "in-progress", "_count": 5}))
        assert tasks["total"] >= 1
        task = tasks["entry"][0]["resource"]
        assert task["status"] == "in-progress"
        assert task["focus"]["reference"].startswith("Device/")
        one = valid(await get(hub, f"/fhir/Task/{task['id']}", headers=R4B), "Task")
        assert one["owner"] == task["owner"]
        device_id = task["focus"]["reference"]
        of_device = valid(await get(hub, "/fhir/Task", params={"focus": device_id}))
        assert task["id"] in {e["resource"]["id"] for e in of_device["entry"]}


class TestWire:
    @pytest.mark.parametrize(
        "how",
        [{"params": {"_format": "xml"}}, {"headers": {"Accept": "application/fhir+xml"}}],
        ids=["_format", "Accept"],
    )
    async def test_xml_is_served_and_parses_as_fhir(self, hub: Wired, how: dict[str, Any]) -> None:
        asset_id, _, _ = await _card(hub)
        response = await get(hub, f"/fhir/Device/{asset_id}", **how)
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("application/fhir+xml")
        device = get_fhir_model_class("Device").model_validate_xml(response.content)
        assert device.model_dump()["id"] == asset_id

    async def test_an_error_asked_in_xml_is_an_xml_operation_outcome(self, hub: Wired) -> None:
        response = await get(hub, "/fhir/Device/AST-nosuch", params={"_format": "xml"})
        assert response.status_code == 404
        assert response.headers["content-type"].startswith("application/fhir+xml")
        outcome = get_fhir_model_class("OperationOutcome").model_validate_xml(response.content)
        assert outcome.model_dump()["issue"][0]["code"] == "not-found"

    async def test_r4b_xml_bundle(self, hub: Wired) -> None:
        response = await get(
            hub, "/fhir/Task", params={"_format": "application/fhir+xml;fhirVersion=4.3", "_count": 2}
        )
        assert response.headers["content-type"].startswith("application/fhir+xml; fhirVersion=4.3")
        assert get_r4b_class("Bundle").model_validate_xml(response.content).model_dump()["total"] >= 1

    async def test_the_201_of_a_fhir_write_names_what_the_facade_reads(self, hub: Wired) -> None:
        location = hub.created.headers["location"]  # type: ignore[attr-defined]
        device = valid(await hub.http.get(location, headers=hub.auth(Role.VIEWER)), "Device")
        assert device["udiCarrier"][0]["deviceIdentifier"] == PUMP_DI
        body = (REPO / "examples" / "fhir" / "supplydelivery-to-icu.json").read_bytes()
        headers = {**hub.auth(Role.INTEGRATOR), "Content-Type": "application/fhir+json"}
        posted = await hub.http.post("/fhir/SupplyDelivery", content=body, headers=headers)
        assert posted.status_code == 201, posted.text
        await drain(hub.hub)
        delivery = valid(await hub.http.get(posted.headers["location"], headers=hub.auth(Role.VIEWER)))
        assert delivery["resourceType"] == "SupplyDelivery"
        assert delivery["status"] == "completed"

    @pytest.mark.parametrize(
        ("call", "status", "code", "expression"),
        [
            (("/fhir/Device/AST-nosuch", {}), 404, "not-found", None),
            (("/fhir/Device", {"_count": "0"}), 400, "invalid", "_count"),
            (("/fhir/Device", {"_count": "many"}), 400, "invalid", "_count"),
            (("/fhir/Device", {"status": "broken"}), 400, "invalid", "status"),
            (("/fhir/Device", {"_lastUpdated": "yesterday"}), 400, "invalid", "_lastUpdated"),
            (("/fhir/Task", {"status": "nonsense"}), 400, "invalid", "status"),
            (("/fhir/SupplyDelivery", {}), 400, "invalid", "lot"),
            (("/fhir/Device", {"_format": "text/csv"}), 406, "not-supported", "_format"),
            (("/fhir/Device", {"_format": "json;fhirVersion=3.0"}), 406, "not-supported", "_format"),
        ],
    )
    async def test_errors_are_operation_outcomes_naming_the_parameter(
        self, hub: Wired, call: tuple[str, dict[str, str]], status: int, code: str, expression: str | None
    ) -> None:
        path, params = call
        response = await get(hub, path, params=params)
        assert response.status_code == status
        issue = valid(response, "OperationOutcome")["issue"][0]
        assert issue["code"] == code
        assert issue.get("expression", [None])[0] == expression


class TestScope:
    async def test_other_departments_get_404_and_empty_searches(self, hub: Wired) -> None:
        """401 without a key; a key scoped to another department gets 404, like an unknown id."""
        asset_id, _, department = await _card(hub)
        unauthenticated = await hub.http.get(f"/fhir/Device/{asset_id}")
        assert unauthenticated.status_code == 401
        assert valid(unauthenticated, "OperationOutcome")["issue"][0]["code"] == "login"
        other = "0999" if department != "0999" else "0998"
        for path in (
            f"/fhir/Device/{asset_id}",
            f"/fhir/Location/{department}",
            f"/fhir/InventoryReport/{department}",
        ):
            hidden = await get(hub, path, Role.VIEWER, other)
            assert hidden.status_code == 404, path
            valid(hidden, "OperationOutcome")
        own = await get(hub, f"/fhir/Device/{asset_id}", Role.VIEWER, department)
        assert own.status_code == 200
        assert valid(await get(hub, "/fhir/Device", Role.VIEWER, other))["total"] == 0
        in_dept = {"location": f"Location/{department}"}
        assert valid(await get(hub, "/fhir/Device", Role.VIEWER, other, params=in_dept))["total"] == 0
        name = valid(await get(hub, f"/fhir/Location/{department}"))["name"]
        by_name = valid(await get(hub, "/fhir/Device", Role.VIEWER, name, params=in_dept))
        assert by_name["total"] >= 1  # a key scoped by the name, searching by the Location id
        assert valid(await get(hub, "/fhir/Location", Role.VIEWER, other))["total"] == 0
        tasks = valid(await get(hub, "/fhir/Task", Role.VIEWER, department, params={"_count": 500}))
        everyone = valid(await get(hub, "/fhir/Task", params={"_count": 500}))
        assert tasks["total"] < everyone["total"]
