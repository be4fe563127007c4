"""The FHIR read facade as a FHIR client uses it: metadata, Device read and search, errors.

Over the real wiring with the sample HRP ledger loaded; every answer is parsed with fhir.resources.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import httpx
import pytest
import pytest_asyncio
from fhir.resources.bundle import Bundle
from fhir.resources.capabilitystatement import CapabilityStatement
from fhir.resources.device import Device
from fhir.resources.operationoutcome import OperationOutcome

from hub.auth.roles import Role
from tests.e2e.conftest import REPO, Wired, wired_hub

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

pytestmark = pytest.mark.asyncio(loop_scope="module")

LEDGER = REPO / "examples" / "hrp" / "固定资产台账_2024.csv"
HRP_CARD = "urn:hospital-hub:id:hrp.card"
FHIR_JSON = "application/fhir+json"


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def hub(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Wired]:
    async with wired_hub(tmp_path_factory.mktemp("fhir") / "hub") as w:
        await w.ingest("hrp", LEDGER)
        yield w


def valid(response: httpx.Response, model: type[Any]) -> dict[str, Any]:
    """The body, after fhir.resources accepted it as `model` (assertions then read plain JSON)."""
    assert response.headers["content-type"].startswith(FHIR_JSON)
    body: dict[str, Any] = response.json()
    model.model_validate(body)
    return body


async def _card(hub: Wired) -> tuple[str, str, str]:
    """A device of the ledger: its asset id, HRP card number and department code."""
    page = (await hub.http.get("/assets", params={"limit": 1}, headers=hub.auth(Role.VIEWER))).json()
    asset = page["items"][0]
    detail = (await hub.http.get(f"/assets/{asset['asset_id']}", headers=hub.auth(Role.VIEWER))).json()
    card = next(i["value"] for i in detail["identifiers"] if i["scheme"] == "hrp.card")
    return asset["asset_id"], card, detail["department_code"]


async def test_metadata_is_a_capability_statement_of_what_is_served(hub: Wired) -> None:
    response = await hub.http.get("/fhir/metadata", headers=hub.auth(Role.VIEWER))
    assert response.status_code == 200
    (rest,) = valid(response, CapabilityStatement)["rest"]
    device = next(r for r in rest["resource"] if r["type"] == "Device")
    assert {i["code"] for i in device["interaction"]} == {"read", "search-type", "create"}
    assert {p["name"] for p in device["searchParam"]} == {"identifier", "status", "location", "type"}


async def test_read_gives_a_device_with_every_identifier(hub: Wired) -> None:
    asset_id, card, department = await _card(hub)
    response = await hub.http.get(f"/fhir/Device/{asset_id}", headers=hub.auth(Role.VIEWER))
    assert response.status_code == 200
    device = valid(response, Device)
    assert device["id"] == asset_id
    assert (HRP_CARD, card) in {(i["system"], i["value"]) for i in device["identifier"]}
    assert device["status"] == "active"
    assert device["location"]["reference"] == f"Location/{department}"


async def test_search_by_system_and_value_finds_the_card(hub: Wired) -> None:
    asset_id, card, _ = await _card(hub)
    for wanted in (f"{HRP_CARD}|{card}", f"|{card}", card):
        response = await hub.http.get(
            "/fhir/Device", params={"identifier": wanted}, headers=hub.auth(Role.VIEWER)
        )
        bundle = valid(response, Bundle)
        assert (bundle["type"], bundle["total"]) == ("searchset", 1), wanted
        assert bundle["entry"][0]["resource"]["id"] == asset_id
    other = await hub.http.get(
        "/fhir/Device",
        params={"identifier": f"urn:hospital-hub:id:spd.code|{card}"},
        headers=hub.auth(Role.VIEWER),
    )
    assert valid(other, Bundle)["total"] == 0  # the same value under another scheme


async def test_search_pages_with_next_and_previous_links(hub: Wired) -> None:
    first = valid(
        await hub.http.get("/fhir/Device", params={"_count": 2}, headers=hub.auth(Role.VIEWER)), Bundle
    )
    assert first["total"] > 2
    assert len(first["entry"]) == 2
    links = {link["relation"]: link["url"] for link in first["link"]}
    assert "previous" not in links
    second = valid(await hub.http.get(f"/fhir/{links['next']}", headers=hub.auth(Role.VIEWER)), Bundle)
    assert {e["resource"]["id"] for e in second["entry"]}.isdisjoint(
        {e["resource"]["id"] for e in first["entry"]}
    )
    assert "previous" in {link["relation"] for link in second["link"]}


async def test_location_and_status_narrow_the_search(hub: Wired) -> None:
    _, _, department = await _card(hub)

    async def search(**params: str) -> dict[str, Any]:
        return valid(await hub.http.get("/fhir/Device", params=params, headers=hub.auth(Role.VIEWER)), Bundle)

    in_dept = await search(location=f"Location/{department}")
    assert in_dept["total"] >= 1
    assert all(e["resource"]["location"]["reference"] == f"Location/{department}" for e in in_dept["entry"])
    active, inactive = await search(status="active", _count="500"), await search(status="inactive")
    everything = await search()
    assert active["total"] + inactive["total"] == everything["total"]
    assert all(e["resource"]["status"] == "active" for e in active.get("entry", []))


@pytest.mark.parametrize(
    ("call", "status", "code", "expression"),
    [
        (("/fhir/Device/AST-nosuch", {}), 404, "not-found", None),
        (("/fhir/Device", {"_count": "0"}), 400, "invalid", "_count"),
        (("/fhir/Device", {"_count": "many"}), 400, "invalid", "_count"),
        (("/fhir/Device", {"status": "broken"}), 400, "invalid", "status"),
    ],
)
async def test_errors_are_operation_outcomes_naming_the_parameter(
    hub: Wired, call: tuple[str, dict[str, str]], status: int, code: str, expression: str | None
) -> None:
    path, params = call
    response = await hub.http.get(path, params=params, headers=hub.auth(Role.VIEWER))
    assert response.status_code == status
    issue = valid(response, OperationOutcome)["issue"][0]
    assert issue["code"] == code
    assert issue.get("expression", [None])[0] == expression


async def test_no_key_and_other_departments_get_operation_outcomes(hub: Wired) -> None:
    """401 without a key; a key scoped to another department gets 404 for a device, like an unknown one."""
    asset_id, _, department = await _card(hub)
    unauthenticated = await hub.http.get(f"/fhir/Device/{asset_id}")
    assert unauthenticated.status_code == 401
    assert valid(unauthenticated, OperationOutcome)["issue"][0]["code"] == "login"
    other = "0999" if department != "0999" else "0998"
    hidden = await hub.http.get(f"/fhir/Device/{asset_id}", headers=hub.auth(Role.VIEWER, other))
    assert hidden.status_code == 404
    own = await hub.http.get(f"/fhir/Device/{asset_id}", headers=hub.auth(Role.VIEWER, department))
    assert own.status_code == 200
    listed = valid(await hub.http.get("/fhir/Device", headers=hub.auth(Role.VIEWER, other)), Bundle)
    assert listed["total"] == 0
