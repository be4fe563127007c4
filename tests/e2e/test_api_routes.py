"""Every route x every role x department scope, from an explicit table, over the real wiring.

One hub (build_hub + build_api, SQLite, keys required) holds the sample exports of every source
plus two HL7 DFT^P03 messages written here: one of the ICU (重症医学科) and one of the ER
(急诊科), each with a unit that fails (FT1-13 '9999'), so each department has a raw message,
a dead letter, a traced unit and a patient name in raw bytes of its own.

`ROUTES` is the contract: which roles may call each route, and what a department-scoped key
gets. The first test fails when the app has a route the table does not list (or the table a
route the app lacks); the second calls every route as no key, each role, and keys scoped to the
object's department and to another one, and compares the status with the table.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import httpx
import pytest
import pytest_asyncio
from fastapi import APIRouter

from hub.api.app import _include, create_app
from hub.api.scope import ScopeDep
from hub.auth.roles import Role
from hub.pipeline import drain
from tests.e2e.conftest import REPO, Wired, wired_hub

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

pytestmark = pytest.mark.asyncio(loop_scope="module")

ICU, ER = "重症医学科", "急诊科"
V, APP, INT, AUD, ADM = Role.VIEWER, Role.APP, Role.INTEGRATOR, Role.AUDITOR, Role.ADMIN
ROLES = (V, APP, INT, AUD, ADM)
READ = frozenset(ROLES)
INGEST = WRITE = DLQ = frozenset({INT, ADM})
HISTORY = RAW_META = frozenset({INT, AUD, ADM})
RAW_PAYLOAD = frozenset({AUD, ADM})
SUBSCRIBE = frozenset({APP, INT, ADM})
STREAM = frozenset({APP, ADM})
AUDIT = frozenset({AUD, ADM})
NOBODY_NEEDED = frozenset()

Scope = Literal["open", "list", "object", "hospital", "label"]
"""What a department-scoped key gets: open (no key needed at all), list (200, filtered to its
department), object (its department's object: 2xx; another's: 404 like an unknown id),
hospital (hospital-wide: 403 for any scoped key), label (opened by a device label's reporting key
or a message's one-time link, never by an API key: 401 for every caller here)."""


@dataclass(frozen=True)
class Rule:
    roles: frozenset[Role]  # who may call it (empty with scope "open": anyone, no key)
    scope: Scope


ROUTES: dict[tuple[str, str], Rule] = {
    ("GET", "/"): Rule(NOBODY_NEEDED, "open"),
    ("GET", "/console"): Rule(NOBODY_NEEDED, "open"),
    ("GET", "/console/{name}"): Rule(NOBODY_NEEDED, "open"),
    ("GET", "/health"): Rule(NOBODY_NEEDED, "open"),
    ("GET", "/health/live"): Rule(NOBODY_NEEDED, "open"),
    ("GET", "/health/ready"): Rule(NOBODY_NEEDED, "open"),
    ("GET", "/metrics"): Rule(NOBODY_NEEDED, "open"),
    ("GET", "/docs"): Rule(NOBODY_NEEDED, "open"),  # FastAPI's own: the API's description
    ("GET", "/docs/oauth2-redirect"): Rule(NOBODY_NEEDED, "open"),
    ("GET", "/redoc"): Rule(NOBODY_NEEDED, "open"),
    ("GET", "/openapi.json"): Rule(NOBODY_NEEDED, "open"),
    ("GET", "/asyncapi.json"): Rule(NOBODY_NEEDED, "open"),  # the events' description, like openapi.json
    ("POST", "/ingest/{system}"): Rule(INGEST, "hospital"),
    ("GET", "/ingest/{system}/{raw_ref}"): Rule(INGEST, "hospital"),
    ("POST", "/fhir"): Rule(INGEST, "hospital"),
    ("POST", "/fhir/{resource_type}"): Rule(INGEST, "hospital"),
    ("GET", "/history/{kind}/{subject_id}"): Rule(HISTORY, "object"),
    ("GET", "/dlq"): Rule(DLQ, "list"),
    ("POST", "/dlq/retry"): Rule(DLQ, "list"),
    ("GET", "/dlq/groups"): Rule(DLQ, "list"),
    ("POST", "/dlq/retry/matching"): Rule(DLQ, "list"),  # filters: a scoped key's own messages only
    ("GET", "/audit/ledger"): Rule(HISTORY, "hospital"),
    ("GET", "/messages"): Rule(RAW_META, "list"),
    ("GET", "/channels"): Rule(RAW_META, "hospital"),
    ("GET", "/messages/{raw_ref}"): Rule(RAW_META, "object"),
    ("GET", "/messages/{raw_ref}/text"): Rule(RAW_PAYLOAD, "object"),
    ("POST", "/messages/reprocess"): Rule(DLQ, "list"),  # a filter: a scoped key's own messages only
    ("POST", "/subscriptions"): Rule(SUBSCRIBE, "hospital"),
    ("GET", "/subscriptions"): Rule(SUBSCRIBE, "hospital"),
    ("GET", "/subscriptions/{subscription_id}"): Rule(SUBSCRIBE, "hospital"),
    ("PATCH", "/subscriptions/{subscription_id}"): Rule(SUBSCRIBE, "hospital"),
    ("DELETE", "/subscriptions/{subscription_id}"): Rule(SUBSCRIBE, "hospital"),
    ("GET", "/subscriptions/{subscription_id}/deliveries"): Rule(SUBSCRIBE, "hospital"),
    ("POST", "/subscriptions/{subscription_id}/replay"): Rule(SUBSCRIBE, "hospital"),
    ("GET", "/subscriptions/{subscription_id}/replays"): Rule(SUBSCRIBE, "hospital"),
    ("POST", "/subscriptions/{subscription_id}/rotate-secret"): Rule(SUBSCRIBE, "hospital"),
    ("GET", "/alerts"): Rule(READ, "hospital"),
    ("GET", "/events/stream"): Rule(STREAM, "hospital"),
    ("HEAD", "/raw/{raw_ref}"): Rule(RAW_META, "object"),
    ("GET", "/raw/{raw_ref}"): Rule(RAW_PAYLOAD, "object"),
    ("GET", "/assets"): Rule(READ, "list"),
    ("GET", "/assets/conflicts"): Rule(READ, "list"),
    ("GET", "/assets/{asset_id}"): Rule(READ, "object"),
    ("GET", "/assets/{asset_id}/history"): Rule(READ, "object"),
    ("POST", "/assets/{asset_id}/identifiers"): Rule(WRITE, "object"),
    ("GET", "/availability"): Rule(READ, "list"),
    ("GET", "/availability/devices"): Rule(READ, "list"),
    ("GET", "/inventory/stock"): Rule(READ, "list"),
    ("GET", "/inventory/alerts"): Rule(READ, "list"),
    ("GET", "/inventory/distribution"): Rule(READ, "list"),
    ("GET", "/inventory/expiring"): Rule(READ, "list"),
    ("GET", "/inventory/items"): Rule(READ, "list"),  # the item catalogue is shared
    ("GET", "/inventory/items/{item_id}"): Rule(READ, "list"),  # shared; places filtered
    ("GET", "/inventory/trace/{code}"): Rule(READ, "object"),
    ("GET", "/inventory/recall"): Rule(READ, "list"),
    ("GET", "/workorders"): Rule(READ, "list"),
    ("GET", "/workorders/{workorder_id}"): Rule(READ, "object"),
    ("GET", "/compliance/due"): Rule(READ, "list"),
    ("GET", "/energy/consumption"): Rule(READ, "list"),
    ("GET", "/energy/anomalies"): Rule(READ, "list"),
    ("GET", "/energy/zones"): Rule(READ, "list"),
    ("GET", "/energy/breakdown"): Rule(READ, "list"),
    ("GET", "/devices/health"): Rule(READ, "list"),
    ("GET", "/devices/warnings"): Rule(READ, "list"),
    ("GET", "/assets/{asset_id}/telemetry"): Rule(READ, "object"),
    ("GET", "/assets/{asset_id}/telemetry/series"): Rule(READ, "object"),
    ("GET", "/kpis"): Rule(READ, "list"),
    ("GET", "/fhir/metadata"): Rule(READ, "list"),
    ("GET", "/fhir/Device"): Rule(READ, "list"),
    ("GET", "/fhir/Device/{device_id}"): Rule(READ, "object"),
    ("GET", "/fhir/Location"): Rule(READ, "list"),
    ("GET", "/fhir/Location/{location_id}"): Rule(READ, "object"),
    ("GET", "/fhir/InventoryItem"): Rule(READ, "list"),  # the item catalogue is shared
    ("GET", "/fhir/InventoryItem/{item_id}"): Rule(READ, "list"),
    ("GET", "/fhir/InventoryReport"): Rule(READ, "list"),
    ("GET", "/fhir/InventoryReport/{report_id}"): Rule(READ, "object"),
    ("GET", "/fhir/SupplyDelivery"): Rule(READ, "list"),  # a search: what the department saw of it
    ("GET", "/fhir/SupplyDelivery/{delivery_id}"): Rule(READ, "object"),
    ("GET", "/fhir/Task"): Rule(READ, "list"),
    ("GET", "/fhir/Task/{task_ref}"): Rule(READ, "object"),
    ("GET", "/fhir/AuditEvent"): Rule(AUDIT, "hospital"),
    ("GET", "/fhir/AuditEvent/{event_id}"): Rule(AUDIT, "hospital"),
    ("GET", "/notifications"): Rule(READ, "list"),
    ("POST", "/notifications/{notification_id}/ack"): Rule(READ, "object"),
    ("POST", "/notifications/{notification_id}/read"): Rule(READ, "object"),
    ("GET", "/notifications/{notification_id}/ack"): Rule(NOBODY_NEEDED, "label"),
    ("GET", "/r/{asset_id}"): Rule(NOBODY_NEEDED, "label"),
    ("GET", "/r/{asset_id}/state"): Rule(NOBODY_NEEDED, "label"),
    ("POST", "/r/{asset_id}/reports"): Rule(NOBODY_NEEDED, "label"),
    ("GET", "/scan/{name}"): Rule(NOBODY_NEEDED, "open"),
}

# FastAPI answers HEAD for a GET route's path only when declared; these are not in OpenAPI.
NOT_IN_OPENAPI = {
    ("GET", "/"),
    ("GET", "/console"),
    ("GET", "/console/{name}"),
    ("GET", "/notifications/{notification_id}/ack"),
    ("GET", "/r/{asset_id}"),
    ("GET", "/scan/{name}"),
}


def dft(message_id: str, patient: str, department: str, serial: str, lot: str) -> bytes:
    """An HL7 DFT^P03: one device consumed in `department` (its UDI), and a unit that fails."""
    udi = "(01)06938123450010(17)271231(10)" + lot + "(21)" + serial
    segments = [
        (
            "MSH|^~\\&|WINNING_HIS|XXRMYY|HUB|XXRMYY|20240612103500+0800||DFT^P03^DFT_P03|"
            f"{message_id}|P|2.7||||||UNICODE UTF-8"
        ),
        "EVN|P03|20240612103500",
        f"PID|1||MR{message_id}^^^XXRMYY^MR||{patient}||19650312|M",
        (
            f"FT1|1|C-{message_id}-1||20240612101500|20240612103000|CG|HC0301^冠脉球囊扩张导管^LOCAL|"
            f"导管||1|2680.00|2680.00|{department}||||||||||C-{message_id}-1"
        ),
        f"PRT|1|AD||EQUIP^Equipment^HL70912||||||{udi}^^2.51.1.1^ISO",
        (
            f"FT1|2|C-{message_id}-2||20240612102000|20240612103000|CG|HC0302^药物洗脱支架^LOCAL|"
            f"支架||0|6800.00|6800.00|0101^重症医学科||||||||||C-{message_id}-2"
        ),
        "PRT|2|AD||EQUIP^Equipment^HL70912||||||(01)06938123450027(17)280630(10)DES24B07(21)SN9^^2.51.1.1^ISO",
    ]
    return ("\r".join(segments) + "\r").encode()


@dataclass
class Dept:
    """What one department owns in the loaded hub: the ids the table's requests name."""

    name: str
    code: str
    patient: str
    raw_ref: str
    serial: str
    lot: str
    dead_letter_id: str
    asset_id: str
    workorder_id: str
    message_id: str
    notification_id: str
    delivery_id: str = ""  # a delivery of stock to the department (FHIR SupplyDelivery)


async def _delivery_to(w: Wired, code: str) -> str:
    """The id of a SupplyDelivery to the department `code` (from its stock's lots)."""
    admin = w.auth(ADM)
    report = (await w.http.get(f"/fhir/InventoryReport/{code}", headers=admin)).json()
    for line in (line for listing in report["inventoryListing"] for line in listing["item"]):
        lot = line["extension"][0]["extension"][0]["valueString"]
        found = (await w.http.get("/fhir/SupplyDelivery", params={"lot": lot}, headers=admin)).json()
        for entry in found.get("entry", []):
            if entry["resource"].get("destination", {}).get("reference", "").startswith(f"Location/{code}"):
                return str(entry["resource"]["id"])
    raise AssertionError(f"no delivery to {code} in the samples")


@dataclass
class Loaded:
    wired: Wired
    icu: Dept
    er: Dept
    subscription: dict[Role | str, str]  # who -> a subscription id of theirs
    item_id: str  # an item of the master (a catalogue shared by every department)
    access_event_id: str  # an audited read on the ledger (FHIR AuditEvent)


async def _dept(w: Wired, tmp: Path, name: str, *, code: str, patient: str, tag: str) -> Dept:
    message_id, serial, lot = f"DFT-{tag}", f"SN-{tag}", f"LOT-{tag}"
    path = tmp / f"{tag}.hl7"
    path.write_bytes(dft(message_id, patient, f"{code}^{name}", serial, lot))
    (raw_ref,) = await w.ingest("his", path)
    admin = w.auth(ADM)
    letters = (await w.http.get("/dlq", params={"system": "his"}, headers=admin)).json()["items"]
    (letter,) = [d for d in letters if d["raw_ref"] == raw_ref]
    assets = (await w.http.get("/assets", params={"department": name}, headers=admin)).json()["items"]
    orders = (await w.http.get("/workorders", params={"department": name}, headers=admin)).json()
    # The bundled rules notify the department of the work orders the examples hold (SLA breaches).
    notes = (await w.http.get("/notifications", params={"view": "all"}, headers=w.auth(ADM, name))).json()
    return Dept(
        name=name,
        code=code,
        patient=patient,
        raw_ref=raw_ref,
        serial=serial,
        lot=lot,
        dead_letter_id=letter["dead_letter_id"],
        asset_id=assets[0]["asset_id"],
        workorder_id=orders["items"][0]["workorder_id"],
        message_id=message_id,
        notification_id=notes["items"][0]["notification_id"],
    )


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def loaded(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Loaded]:
    tmp = tmp_path_factory.mktemp("routes")
    async with wired_hub(tmp / "hub", settings={"webhook_allow": ["127.0.0.1"]}) as w:
        examples = REPO / "examples"
        await w.ingest("hrp", examples / "hrp" / "固定资产台账_2024.csv")
        await w.ingest("oa", examples / "oa" / "工单导出_2024Q2.json")
        await w.ingest("spd", *sorted((examples / "spd").glob("0*")))
        await w.ingest("his", *sorted((examples / "his").glob("*.hl7")))
        icu = await _dept(w, tmp, ICU, code="0101", patient="钱多多", tag="ICU")
        er = await _dept(w, tmp, ER, code="0102", patient="孙悟空", tag="ER")
        icu.delivery_id, er.delivery_id = await _delivery_to(w, "0101"), await _delivery_to(w, "0102")
        subscription: dict[Role | str, str] = {}
        for who in (APP, INT, ADM):
            created = await w.http.post("/subscriptions", json=HOOK, headers=w.auth(who))
            assert created.status_code == 201, created.text
            subscription[who] = created.json()["id"]
        items = (await w.http.get("/inventory/items", headers=w.auth(ADM))).json()["items"]
        await w.http.get(f"/raw/{icu.raw_ref}", headers=w.auth(AUD))  # an audited read
        await drain(w.hub)
        audited = (await w.http.get("/fhir/AuditEvent", headers=w.auth(AUD))).json()
        access = audited["entry"][0]["resource"]["id"]
        yield Loaded(w, icu, er, subscription, items[0]["item_id"], access)


HOOK = {"url": "http://127.0.0.1:9/hook", "types": ["asset.*"]}
FHIR_DEVICE = (REPO / "examples" / "fhir" / "device-ventilator-icu.json").read_bytes()
FHIR_BUNDLE = (REPO / "examples" / "fhir" / "bundle-transaction.json").read_bytes()


@dataclass(frozen=True)
class Call:
    method: str
    url: str
    params: dict[str, str] | None = None
    body: bytes | None = None
    json: dict[str, Any] | None = None
    headers: dict[str, str] | None = None


def call_for(
    route: tuple[str, str], data: Loaded, dept: Dept, who: Role | str, subscription: str | None = None
) -> Call:
    """The request exercising `route` on `dept`'s objects, as `who` would send it."""
    method, path = route
    sub = subscription or data.subscription.get(who, data.subscription[ADM])
    fill = {
        "{name}": "console.js",
        "{system}": "his",
        "{raw_ref}": dept.raw_ref,
        "{resource_type}": "Device",
        "{kind}": "asset",
        "{subject_id}": dept.asset_id,
        "{asset_id}": dept.asset_id,
        "{device_id}": dept.asset_id,
        "{subscription_id}": sub,
        "{item_id}": data.item_id,
        "{location_id}": dept.code,
        "{report_id}": dept.code,
        "{task_ref}": dept.workorder_id,
        "{event_id}": data.access_event_id,
        "{delivery_id}": dept.delivery_id,
        "{code}": dept.serial,
        "{workorder_id}": dept.workorder_id,
        "{notification_id}": dept.notification_id,
    }
    url = path
    for key, value in fill.items():
        url = url.replace(key, value)
    fhir = {"Content-Type": "application/fhir+json"}
    special: dict[tuple[str, str], Call] = {
        ("POST", "/ingest/{system}"): Call(
            method, url, body=dft(dept.message_id, dept.patient, "0101", "S", "L")
        ),
        ("POST", "/fhir"): Call(method, url, body=FHIR_BUNDLE, headers=fhir),
        ("POST", "/fhir/{resource_type}"): Call(method, url, body=FHIR_DEVICE, headers=fhir),
        ("POST", "/subscriptions"): Call(method, url, json=HOOK),
        ("PATCH", "/subscriptions/{subscription_id}"): Call(method, url, json={"status": "paused"}),
        ("POST", "/subscriptions/{subscription_id}/replay"): Call(
            method, url, params={"from": "2024-06-12T00:00:00+08:00"}
        ),
        ("POST", "/assets/{asset_id}/identifiers"): Call(
            method, url, json={"scheme": "udi", "value": f"U-{who}", "actor": "王工"}
        ),
        ("GET", "/events/stream"): Call(method, url, params={"from": "beginning", "limit": "1"}),
        ("POST", "/messages/reprocess"): Call(
            method, url, json={"system": "his", "control_id": dept.message_id}
        ),
        ("POST", "/dlq/retry/matching"): Call(method, url, json={"system": "his"}),
        ("GET", "/inventory/distribution"): Call(method, url, params={"item": "HC0301"}),
        ("GET", "/inventory/recall"): Call(method, url, params={"lot": dept.lot}),
        ("GET", "/scan/{name}"): Call(method, "/scan/scan.js"),
        ("POST", "/r/{asset_id}/reports"): Call(
            method, url, json={"symptom": "无法开机", "nonce": "routes-table"}
        ),
        ("GET", "/fhir/SupplyDelivery"): Call(method, url, params={"serial": dept.serial}),
        ("GET", "/energy/consumption"): Call(method, url, params={"from": "2024-06-01", "to": "2024-06-30"}),
        ("GET", "/energy/anomalies"): Call(method, url, params={"from": "2024-06-01", "to": "2024-06-30"}),
        ("GET", "/energy/breakdown"): Call(method, url, params={"from": "2024-06-01", "to": "2024-06-30"}),
    }
    return special.get(route, Call(method, url))


async def send(w: Wired, call: Call, headers: dict[str, str]) -> httpx.Response:
    return await w.http.request(
        call.method,
        call.url,
        params=call.params,
        content=call.body,
        json=call.json,
        headers={**(call.headers or {}), **headers},
    )


def _schema_routes(w: Wired) -> set[tuple[str, str]]:
    found = {(method.upper(), path) for path, ops in w.app.openapi()["paths"].items() for method in ops}
    routes = list(w.app.routes)
    while routes:
        route = routes.pop()
        included = getattr(route, "original_router", None)  # FastAPI >= 0.16x keeps included routers
        if included is not None:
            routes += included.routes
        elif not getattr(route, "include_in_schema", True):
            found |= {(m, getattr(route, "path", "")) for m in getattr(route, "methods", set()) - {"HEAD"}}
    return found


async def test_the_table_lists_every_route_and_nothing_else(loaded: Loaded) -> None:
    """A new route (in OpenAPI or not) must be added to ROUTES with its roles and scope rule."""
    found = _schema_routes(loaded.wired)
    assert (found - set(ROUTES), set(ROUTES) - found) == (set(), set())


def expected(rule: Rule, caller: str, role: Role | None) -> set[int] | range:
    """The status(es) the table promises for one caller."""
    ok = range(200, 400)  # 3xx: `/` redirects to the console
    if rule.scope == "open":
        want: set[int] | range = ok
    elif rule.scope == "label" or role is None:  # an API key never opens a label's route
        want = {401}
    elif role not in rule.roles or (caller != "unscoped" and rule.scope == "hospital"):
        want = {403}
    elif caller == "other" and rule.scope == "object":
        want = {404}
    else:
        want = ok
    return want


CALLERS: list[tuple[str, Role | None]] = [
    ("anonymous", None),
    *[("unscoped", r) for r in ROLES],
    ("own", ADM),  # an admin key scoped to the object's department (ICU)
    ("other", ADM),  # an admin key scoped to another department (ER)
    ("other", AUD),  # raw bytes: the auditor's scoped key
    ("other", INT),
]


@pytest.mark.parametrize("route", sorted(ROUTES), ids=lambda r: f"{r[0]} {r[1]}")
async def test_every_role_and_scope_gets_what_the_table_says(loaded: Loaded, route: tuple[str, str]) -> None:
    rule = ROUTES[route]
    w = loaded.wired
    seen = []
    for caller, role in CALLERS:
        headers: dict[str, str] = {}
        if role is not None:
            department = {"own": ICU, "other": ER}.get(caller)
            headers = w.auth(role, department)
        who: Role | str = role if role is not None and caller == "unscoped" else f"{caller}:{role}"
        fresh = None
        if route[0] == "DELETE" and role in SUBSCRIBE and caller == "unscoped":
            # Each deletion takes a fresh subscription of the caller's, so later calls still have theirs.
            created = await w.http.post("/subscriptions", json=HOOK, headers=headers)
            fresh = created.json()["id"]
        response = await send(w, call_for(route, loaded, loaded.icu, who, subscription=fresh), headers)
        want = expected(rule, caller, role)
        seen.append((caller, role, response.status_code, response.status_code in want))
    assert all(ok for *_, ok in seen), seen


def _markers(dept: Dept) -> list[str]:
    """Strings only `dept`'s objects carry: its patient, message, raw ref, dead letter, unit, lot."""
    return [dept.patient, dept.message_id, dept.raw_ref, dept.dead_letter_id, dept.serial, dept.lot]


DEPARTMENT_FIELDS = ("department_code", "department_name", "asset_department_code", "asset_department_name")


def _foreign_items(body: Any, mine: set[str]) -> list[dict[str, Any]]:
    """List items naming departments, none of which is the caller's (`mine`: its code and name)."""
    if not isinstance(body, dict) or not isinstance(body.get("items"), list):
        return []
    out = []
    for item in body["items"]:
        named = {item.get(f) for f in DEPARTMENT_FIELDS if isinstance(item, dict)} - {None}
        if named and not named & mine:
            out.append(item)
    return out


@pytest.mark.parametrize("scoped_to", [ER, ICU])
async def test_a_scoped_key_reads_nothing_of_another_department_through_any_route(
    loaded: Loaded, scoped_to: str
) -> None:
    """An admin key scoped to one department, on every readable route with the other
    department's ids, CSV exports and HEAD included: no marker of the other department, and no
    list item of another department."""
    w = loaded.wired
    mine, theirs = (loaded.er, loaded.icu) if scoped_to == ER else (loaded.icu, loaded.er)
    codes = {ER: "0102", ICU: "0101"}
    headers = w.auth(ADM, scoped_to)
    leaks = []
    for route in ROUTES:
        if route[0] not in ("GET", "HEAD") or route == ("GET", "/events/stream"):
            continue
        call = call_for(route, loaded, theirs, "scan")
        asked = call.url + json.dumps(call.params or {}, ensure_ascii=False)
        markers = [m for m in _markers(theirs) if m not in asked]  # an echo of the request is no leak
        for accept in ("application/json", "text/csv"):
            response = await send(w, call, {**headers, "Accept": accept})
            text = response.text + json.dumps(dict(response.headers), ensure_ascii=False)
            leaks += [(route, accept, m) for m in markers if m in text]
            if response.content and response.headers.get("content-type", "").startswith("application/json"):
                foreign = _foreign_items(response.json(), {scoped_to, codes[scoped_to]})
                leaks += [(route, "item", json.dumps(i, ensure_ascii=False)[:200]) for i in foreign]
    assert leaks == []
    # ...while its own raw message and dead letter are there for it.
    own_raw = await w.http.get(f"/raw/{mine.raw_ref}", headers=headers)
    assert (own_raw.status_code, mine.patient in own_raw.text) == (200, True)
    listed = (await w.http.get("/dlq", params={"status": "all"}, headers=headers)).json()["items"]
    assert [d["dead_letter_id"] for d in listed] == [mine.dead_letter_id]


async def test_an_unscoped_key_reads_both(loaded: Loaded) -> None:
    """The check above could pass by serving nothing: unscoped, the same calls find both."""
    w = loaded.wired
    headers = w.auth(ADM)
    letters = (await w.http.get("/dlq", params={"status": "all", "limit": "1000"}, headers=headers)).json()
    ids = {d["dead_letter_id"] for d in letters["items"]}
    assert {loaded.icu.dead_letter_id, loaded.er.dead_letter_id} <= ids
    for dept in (loaded.icu, loaded.er):
        raw = await w.http.get(f"/raw/{dept.raw_ref}", headers=headers)
        assert dept.patient in raw.text
        trace = await w.http.get(f"/inventory/trace/{dept.serial}", headers=headers)
        assert trace.status_code == 200, trace.text


async def test_raw_messages_of_several_departments_are_hidden_from_scoped_keys(loaded: Loaded) -> None:
    """The HRP ledger names every department: the hub cannot give it to one, so scoped keys get 404,
    and the attempt is recorded on the audit ledger as denied."""
    w = loaded.wired
    listed = (await w.http.get("/dlq", params={"system": "hrp"}, headers=w.auth(ADM))).json()["items"]
    ledger = listed[0]["raw_ref"]
    assert (await w.http.head(f"/raw/{ledger}", headers=w.auth(ADM))).status_code == 200
    for department in (ICU, ER):
        assert (await w.http.head(f"/raw/{ledger}", headers=w.auth(AUD, department))).status_code == 404
        retried = await w.http.post("/dlq/retry", params={"raw_ref": ledger}, headers=w.auth(INT, department))
        assert retried.status_code == 404
    unknown = await w.http.get("/raw/his:" + "0" * 32, headers=w.auth(AUD, ICU))
    assert unknown.status_code == 404
    assert re.sub(r"'[^']*'", "", unknown.json()["detail"]) == "no raw message "


async def test_a_data_route_that_bypasses_the_scope_is_refused(loaded: Loaded) -> None:
    """The app builder refuses a router whose route neither takes ScopeDep nor sits behind `require`."""
    app = create_app(loaded.wired.hub.api)  # a second app: the shared one keeps its routes
    bypass = APIRouter()

    @bypass.get("/leaky")
    def leaky() -> dict[str, str]:
        return {}

    scoped = APIRouter()

    @scoped.get("/fine")
    def fine(scope: ScopeDep) -> dict[str, str | None]:
        return {"department": scope.department}

    with pytest.raises(RuntimeError, match="/leaky does not go through"):
        _include(app, bypass)
    _include(app, scoped)  # no error
