"""The message browser through the real wiring: GET /messages, GET /messages/{raw_ref},
POST /messages/reprocess, and /dlq paging.

Two HL7 DFT^P03 messages arrive over the MLLP handler (as `hub serve` receives them), one of the
ICU and one of the ER, each with a unit whose department is unknown (FT1-13 '9999': kept, with a
dead-letter note), so each has events, an ACK and a dead letter; department-scoped keys see only
their own.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

import pytest

from hub.auth.roles import Role
from hub.pipeline import drain
from tests.e2e.conftest import Wired, wired_hub
from tests.e2e.test_api_routes import dft

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from pathlib import Path

ICU, ER = "重症医学科", "急诊科"


@pytest.fixture
async def hub2(tmp_path: Path) -> AsyncIterator[Wired]:
    async with wired_hub(tmp_path / "hub") as w:
        for tag, code, name, patient in (("ICU", "0101", ICU, "钱多多"), ("ER", "0102", ER, "孙悟空")):
            ack = await w.hub.mllp.handle(
                dft(f"DFT-{tag}", patient, f"{code}^{name}", f"SN-{tag}", f"L-{tag}"), {}
            )
            assert b"MSA|" in ack
        await drain(w.hub)
        yield w


async def page(
    w: Wired, *, role: Role = Role.INTEGRATOR, department: str | None = None, **params: str
) -> Any:
    response = await w.http.get("/messages", params=params, headers=w.auth(role, department))
    assert response.status_code == 200, response.text
    return response.json()


async def detail(w: Wired, raw_ref: str, role: Role = Role.INTEGRATOR) -> Any:
    # The ACK joins the archive's next group commit (not awaited on the MLLP hot path): ask again.
    for _ in range(100):
        response = await w.http.get(f"/messages/{raw_ref}", headers=w.auth(role))
        assert response.status_code == 200, response.text
        if response.json()["ack"] is not None:
            break
        await asyncio.sleep(0.05)
    return response.json()


async def test_a_message_found_by_control_id_shows_its_events_ack_and_dead_letters(hub2: Wired) -> None:
    found = await page(hub2, control_id="DFT-ICU")
    assert (found["total"], found["total_exact"]) == (1, True)
    (item,) = found["items"]
    assert (item["system"], item["message_type"], item["transport"]) == ("his", "DFT^P03", "mllp")
    assert (item["failures"], item["events"] > 0) == (1, True)  # the second charge (quantity 0) fails
    one = await detail(hub2, item["raw_ref"])
    types = {e["event_type"] for e in one["became"]}
    assert "inventory.consumed" in types
    assert len(one["became"]) == item["events"]
    # Each event sits at a position of the audit ledger's hash chain.
    assert all(e["ledger"] is not None and len(e["ledger"]["entry_hash"]) == 64 for e in one["became"])
    assert one["ack"][0].startswith("MSH|")
    assert any(s.startswith("MSA|A") for s in one["ack"])
    (letter,) = one["dead_letters"]
    assert (letter["status"], letter["attempts"]) == ("open", 1)
    # Never the payload: the patient's name is in the raw bytes, not in the browser's answers.
    assert "钱多多" not in str(found) + str(one)


async def test_filters_and_pages(hub2: Wired) -> None:
    assert (await page(hub2))["total"] == 2
    assert [i["control_id"] for i in (await page(hub2))["items"]] == ["DFT-ER", "DFT-ICU"]  # newest first
    second = await page(hub2, limit="1", offset="1")
    assert ([i["control_id"] for i in second["items"]], second["total"]) == (["DFT-ICU"], 2)
    assert (await page(hub2, type="DFT^P03", system="his"))["total"] == 2
    assert (await page(hub2, type="ADT^A01"))["total"] == 0
    assert (await page(hub2, q="ICU"))["total"] == 1
    future = await hub2.http.get(
        "/messages", params={"from": "2999-01-01T00:00:00"}, headers=hub2.auth(Role.INTEGRATOR)
    )
    assert future.json()["total"] == 0  # a time without an offset is the site's (HUB_TZ)
    assert (await page(hub2, to="2999-01-01T00:00:00+08:00"))["total"] == 2


async def test_roles_and_department_scope(hub2: Wired) -> None:
    viewer = await hub2.http.get("/messages", headers=hub2.auth(Role.VIEWER))
    assert viewer.status_code == 403
    icu = await page(hub2, role=Role.ADMIN, department=ICU)
    assert ([i["control_id"] for i in icu["items"]], icu["total"]) == (["DFT-ICU"], 1)
    er_ref = (await page(hub2, control_id="DFT-ER"))["items"][0]["raw_ref"]
    hidden = await hub2.http.get(f"/messages/{er_ref}", headers=hub2.auth(Role.ADMIN, ICU))
    assert hidden.status_code == 404
    unknown = await hub2.http.get("/messages/his:nosuch", headers=hub2.auth(Role.ADMIN))
    assert unknown.status_code == 404
    auditor = await hub2.http.get(f"/messages/{er_ref}", headers=hub2.auth(Role.AUDITOR))
    assert auditor.status_code == 200
    refused = await hub2.http.post(
        "/messages/reprocess", json={"raw_ref": er_ref}, headers=hub2.auth(Role.AUDITOR)
    )
    assert refused.status_code == 403


async def test_reprocess_one_or_a_filtered_set(hub2: Wired) -> None:
    admin = hub2.auth(Role.INTEGRATOR)
    ref = (await page(hub2, control_id="DFT-ICU"))["items"][0]["raw_ref"]
    one = await hub2.http.post("/messages/reprocess", json={"raw_ref": ref}, headers=admin)
    assert one.json() == {"matched": 1, "retried": 1, "resolved": 0, "still_open": 1}
    letter = (await detail(hub2, ref))["dead_letters"][0]
    assert letter["attempts"] == 1  # the same mapping failing again is not a new attempt
    filtered = await hub2.http.post(
        "/messages/reprocess", json={"system": "his", "message_type": "DFT^P03"}, headers=admin
    )
    assert filtered.json()["matched"] == 2
    scoped = await hub2.http.post(
        "/messages/reprocess", json={"system": "his"}, headers=hub2.auth(Role.ADMIN, ER)
    )
    assert scoped.json()["matched"] == 1  # only the ER's own message
    nothing = await hub2.http.post("/messages/reprocess", json={}, headers=admin)
    assert nothing.status_code == 422
    missing = await hub2.http.post("/messages/reprocess", json={"raw_ref": "his:nosuch"}, headers=admin)
    assert missing.status_code == 404


async def test_dead_letters_page_with_offset_and_a_total_over_all_pages(hub2: Wired) -> None:
    admin = hub2.auth(Role.INTEGRATOR)
    first = (await hub2.http.get("/dlq", params={"limit": "1"}, headers=admin)).json()
    second = (await hub2.http.get("/dlq", params={"limit": "1", "offset": "1"}, headers=admin)).json()
    assert (first["total"], second["total"], second["offset"]) == (2, 2, 1)
    assert first["items"][0]["dead_letter_id"] != second["items"][0]["dead_letter_id"]
    scoped = (await hub2.http.get("/dlq", params={"limit": "1"}, headers=hub2.auth(Role.ADMIN, ICU))).json()
    assert (scoped["total"], len(scoped["items"])) == (1, 1)


async def test_the_text_view_decodes_segments_for_auditors_only(hub2: Wired) -> None:
    """The raw bytes as text, one HL7 segment a line, in the charset the hub read them with;
    patient data, so auditor and admin only (like GET /raw), and each read on the audit ledger."""
    ref = (await page(hub2, control_id="DFT-ICU"))["items"][0]["raw_ref"]
    shown = await hub2.http.get(f"/messages/{ref}/text", headers=hub2.auth(Role.AUDITOR))
    assert shown.status_code == 200, shown.text
    body = shown.json()
    assert (body["charset"], body["truncated"]) == ("utf-8", False)
    assert [s[:3] for s in body["lines"]] == ["MSH", "EVN", "PID", "FT1", "PRT", "FT1", "PRT"]
    assert "钱多多" in body["lines"][2]
    integrator = await hub2.http.get(f"/messages/{ref}/text", headers=hub2.auth(Role.INTEGRATOR))
    assert integrator.status_code == 403
    other = await hub2.http.get(f"/messages/{ref}/text", headers=hub2.auth(Role.AUDITOR, ER))
    assert other.status_code == 404


async def test_times_at_the_calendars_edge_are_no_error(hub2: Wired) -> None:
    headers = hub2.auth(Role.INTEGRATOR)
    for params in ({"from": "0001-01-01T00:00:00+14:00"}, {"to": "9999-12-31T23:59:59-12:00"}):
        response = await hub2.http.get("/messages", params=params, headers=headers)
        assert (response.status_code, response.json()["total"]) == (200, 2), params
