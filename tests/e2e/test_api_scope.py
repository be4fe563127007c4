"""Keys, roles and department scope on the read-model routes, through the real wiring, on SQLite and PostgreSQL.

One read-model database per backend holds the registry, inventory, work-order and compliance
read models. Departments appear by code in some keys ("0301", the inventory's ICU) and by name
in others ("重症医学科", the ICU in every read model), as `hub keys create --department` allows.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from hub.api.deps import get_as_of, get_publisher
from hub.auth.keys import KeyStore
from hub.auth.roles import Role
from projections.assets.queries import get_asset
from projections.assets.registry import AssetRegistry
from projections.compliance.projection import Compliance
from projections.inventory.projection import Inventory
from projections.runtime.db import make_engine
from projections.runtime.tracking import apply_batch, ensure_tables
from projections.work_orders.projection import WorkOrders
from schemas.audit import AccessRecorded
from tests.e2e.conftest import Wired, wired_hub
from tests.e2e.test_api_availability import CONFIG, stream
from tests.unit.projections import test_compliance_factories as cf
from tests.unit.projections import test_inventory_factories as inv
from tests.unit.projections import test_work_orders_factories as wo
from tests.unit.projections.factories import records, registered
from tests.unit.projections.registry_factories import card

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterator
    from pathlib import Path

    from sqlalchemy import Engine

    from schemas.envelope import EventBase

GLOVES_GTIN = "06947517459492"
NOW = datetime(2024, 6, 1, 1, 0, tzinfo=UTC)
H = timedelta(hours=1)
NOT_AN_ASSET = "not a golden record, nor a record merged into one"
LINK = {"scheme": "udi", "value": "U-9", "actor": "王工"}

# name -> (role, department); "0301" is the inventory's ICU, "重症医学科" the ICU's name everywhere.
KEYS: dict[str, tuple[Role, str | None]] = {
    "all": (Role.VIEWER, None),
    "icu": (Role.VIEWER, "重症医学科"),
    "icu_code": (Role.VIEWER, "0301"),
    "er": (Role.VIEWER, "急诊科"),
    "equip": (Role.VIEWER, "0901"),
    "theatre": (Role.VIEWER, "0203"),
    "store": (Role.VIEWER, "9001"),
    "app": (Role.APP, None),
    "auditor": (Role.AUDITOR, None),
    "integrator_icu": (Role.INTEGRATOR, "重症医学科"),
}


def _load(engine: Engine) -> None:
    """The registry (ICU 0101, ER 0102, 设备科 0901), stents and gloves (store 9001, theatre 0203,
    ICU 0301), three work orders and two ventilators' calibrations."""
    registry = AssetRegistry(CONFIG)
    ensure_tables(engine, registry)
    apply_batch(engine, registry, records(stream()))
    ensure_tables(engine, Inventory())
    inv.Feed(engine).apply(
        inv.stent_master(),
        inv.defined("def-gloves", inv.GLOVES, name="检查手套", gtin=GLOVES_GTIN, category="防护用品"),
        inv.threshold("h-icu", inv.GLOVES, inv.ICU, 50, 200, when=inv.at(0)),
        inv.received("r-stent", inv.STENT, 3, lot="L1", serials=["S1", "S2", "S3"], when=inv.at(0)),
        inv.transferred("t-stent", inv.STENT, 2, serials=["S1", "S2"], when=inv.at(24)),
        inv.consumed("c-s1", inv.STENT, serial="S1", patient_token="PT-1", when=inv.at(48)),
        inv.consumed("c-s2", inv.STENT, serial="S2", patient_token="PT-2", when=inv.at(50)),
        inv.received("r-gloves", inv.GLOVES, 500, lot="G1", barcode=inv.gs1(GLOVES_GTIN, lot="G1")),
        inv.transferred("t-gloves", inv.GLOVES, 100, lot="G1", target=inv.ICU, when=inv.at(30)),
        inv.consumed("c-gloves", inv.GLOVES, 60, lot="G1", place=inv.ICU, when=inv.at(40)),
    )
    ensure_tables(engine, WorkOrders())
    wo.Feed(engine)(
        registered("r1", "A1", card="C1", department=wo.ICU),
        registered("r2", "A2", card="C2", department=wo.ER),
        wo.requested("w1", "WO-1", asset=("hrp.card", "C1")),
        # Reported by the ICU on the ER's device: the ER sees it (its device), so does the ICU.
        wo.requested("w2", "WO-2", at=wo.T0 + H, asset=("hrp.card", "C2")),
        wo.requested("w3", "WO-3", at=wo.T0 + 2 * H, department=wo.ER, asset=("oa.no", "N-9")),
    )
    ensure_tables(engine, Compliance())
    cf.ComplianceFeed(engine)(
        cf.ventilator("v1", "A1"),
        cf.calibrated("k1", "A1", date(2023, 6, 6)),
        cf.ventilator("v2", "A2", department=wo.ER),
        cf.calibrated("k2", "A2", date(2023, 5, 20)),
    )


@pytest.fixture(scope="module", params=wo.DB_PARAMS)
def engine(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    for url in wo.module_database(request, tmp_path_factory):
        eng = make_engine(url)
        _load(eng)
        yield eng
        eng.dispose()


@pytest.fixture(scope="module")
def keys(engine: Engine) -> dict[str, tuple[str, str]]:
    """name -> (key id, token) of each key in KEYS."""
    store = KeyStore(engine)
    out = {}
    for name, (role, department) in KEYS.items():
        info, token = store.create(role, department=department, label=name)
        out[name] = (info.key_id, token)
    return out


class Fixed:
    def now(self) -> datetime:
        return NOW


class Harness:
    """The real wiring requiring keys, what it recorded on the audit ledger and what it published.

    The as-of reader and the publisher are replaced through FastAPI's dependency overrides (the
    read models here were written directly, so the log holds nothing to rebuild from).
    """

    def __init__(
        self, wired: Wired, engine: Engine, keys: dict[str, tuple[str, str]], recorded: list[EventBase]
    ) -> None:
        self.keys = keys
        self.recorded = recorded
        self.published: list[EventBase] = []

        async def publish(event: EventBase) -> None:
            self.published.append(event)

        async def as_of(asset_id: str, _occurred: datetime, _known: datetime) -> dict[str, Any] | None:
            # As the record stood then: every device was still in the ER.
            with engine.connect() as conn:
                row = get_asset(conn, asset_id)
            return None if row is None else {**row, "department_code": "0102", "department_name": "急诊科"}

        self.app = wired.app
        self.app.dependency_overrides[get_publisher] = lambda: publish
        self.app.dependency_overrides[get_as_of] = lambda: as_of
        self.http = wired.http

    async def get(self, key: str | None, path: str, **kwargs: Any) -> httpx.Response:
        headers = kwargs.pop("headers", {})
        if key is not None:
            headers["Authorization"] = f"Bearer {self.keys[key][1]}"
        return await self.http.get(path, headers=headers, **kwargs)

    async def post(self, key: str, path: str, body: dict[str, str]) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.keys[key][1]}"}
        return await self.http.post(path, headers=headers, json=body)


@pytest.fixture
async def hub(engine: Engine, keys: dict[str, tuple[str, str]], tmp_path: Path) -> AsyncIterator[Harness]:
    recorded: list[EventBase] = []

    async def access_log(event: EventBase) -> None:
        recorded.append(event)

    url = engine.url.render_as_string(hide_password=False)
    async with wired_hub(
        tmp_path / "hub", settings={"db_url": url}, clock=Fixed(), access_log=access_log
    ) as w:
        yield Harness(w, engine, keys, recorded)


def field(body: dict[str, Any], name: str) -> list[Any]:
    return [item[name] for item in body["items"]]


class TestAuthentication:
    async def test_no_key_is_401(self, hub: Harness) -> None:
        """Keys are required: a request without one is refused with a Bearer challenge."""
        response = await hub.get(None, "/assets")
        assert (response.status_code, response.headers["www-authenticate"]) == (401, "Bearer")

    @pytest.mark.parametrize("token", ["hub_abc123_" + "x" * 40, "not-a-key", "hub_ab!_" + "x" * 40])
    async def test_a_wrong_key_is_401(self, hub: Harness, token: str) -> None:
        """An unknown or malformed key is refused, and nothing is served."""
        response = await hub.http.get("/inventory/stock", headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 401
        assert "items" not in response.json()

    async def test_a_key_in_x_api_key_works_too(self, hub: Harness) -> None:
        """X-API-Key is accepted as well as Authorization: Bearer."""
        response = await hub.http.get("/assets", headers={"X-API-Key": hub.keys["all"][1]})
        assert response.status_code == 200


class TestAssets:
    async def test_an_unscoped_key_sees_every_department(self, hub: Harness) -> None:
        """A key without a department lists the whole registry."""
        body = (await hub.get("all", "/assets")).json()
        assert body["total"] == 5

    async def test_a_scoped_key_lists_only_its_department(self, hub: Harness) -> None:
        """A key of the ICU (by name) lists the ICU's devices only, with a total to match."""
        body = (await hub.get("icu", "/assets")).json()
        assert (set(field(body, "department_name")), body["total"]) == ({"重症医学科"}, 2)
        assert set(field(body, "asset_id")) == {card("ZC-1"), card("ZC-5")}

    async def test_the_csv_export_obeys_the_scope(self, hub: Harness) -> None:
        """Accept: text/csv exports the same scoped rows, not the whole registry."""
        response = await hub.get("er", "/assets", headers={"Accept": "text/csv"})
        assert response.headers["content-type"].startswith("text/csv")
        lines = response.text.lstrip("\ufeff").splitlines()
        assert (len(lines), response.headers["x-total-count"]) == (2, "1")
        assert card("ZC-2") in lines[1]
        assert "急诊科" in lines[1]

    @pytest.mark.parametrize("department", ["急诊科", "0102"])
    async def test_asking_for_another_department_is_an_empty_page(
        self, hub: Harness, department: str
    ) -> None:
        """A scoped key filtering by another department gets nothing (not a 403: nothing to probe)."""
        response = await hub.get("icu", "/assets", params={"department": department})
        assert (response.status_code, response.json()["items"], response.json()["total"]) == (200, [], 0)

    @pytest.mark.parametrize("path", ["/assets/{a}", "/assets/{a}/history"])
    async def test_another_departments_asset_is_404_like_an_unknown_one(
        self, hub: Harness, path: str
    ) -> None:
        """The ER's device, asked for by an ICU key, answers exactly as a device that does not exist."""
        foreign = await hub.get("icu", path.format(a=card("ZC-2")))
        unknown = await hub.get("icu", path.format(a="AST-nope"))
        assert (foreign.status_code, unknown.status_code) == (404, 404)
        assert NOT_AN_ASSET in foreign.json()["detail"]
        assert foreign.json()["detail"] == unknown.json()["detail"].replace("AST-nope", card("ZC-2"))

    async def test_a_merged_id_of_an_in_scope_device_resolves(self, hub: Harness) -> None:
        """A provisional id merged into the ICU's ventilator still answers for the ICU."""
        response = await hub.get("icu", f"/assets/{card('ZC-1')}/history")
        assert (response.status_code, response.json()["asset_id"]) == (200, card("ZC-1"))

    async def test_as_of_shows_a_device_of_the_department_then_or_now(self, hub: Harness) -> None:
        """As of then (all in the ER), the ICU's ventilator is the ER's and the ICU's; not 设备科's."""
        params = {"as_of": "2024-01-01T00:00:00+00:00"}
        codes = [
            (await hub.get(key, f"/assets/{card('ZC-1')}", params=params)).status_code
            for key in ("er", "icu", "equip")
        ]
        assert codes == [200, 200, 404]

    async def test_conflicts_with_a_side_in_scope(self, hub: Harness) -> None:
        """The U-1 conflict (ICU holder, 设备科 claimant) shows for both sides, not for the ER."""
        seen = {
            key: (await hub.get(key, "/assets/conflicts")).json()["total"] for key in ("icu", "equip", "er")
        }
        assert seen == {"icu": 1, "equip": 1, "er": 0}


class TestLinks:
    @pytest.mark.parametrize("key", ["all", "icu", "app", "auditor"])
    async def test_roles_without_write_get_403(self, hub: Harness, key: str) -> None:
        """Viewers, apps and auditors may not link identifiers; nothing is published."""
        response = await hub.post(key, f"/assets/{card('ZC-1')}/identifiers", LINK)
        assert (response.status_code, hub.published) == (403, [])

    async def test_a_scoped_integrator_cannot_link_on_another_departments_asset(self, hub: Harness) -> None:
        """An ICU integrator linking on the ER's device gets the unknown-asset 404; nothing is published."""
        response = await hub.post("integrator_icu", f"/assets/{card('ZC-2')}/identifiers", LINK)
        assert (response.status_code, hub.published) == (404, [])
        assert NOT_AN_ASSET in response.json()["detail"]

    async def test_a_scoped_integrator_links_on_its_own_asset(self, hub: Harness) -> None:
        """On the ICU's device the link is accepted and published."""
        response = await hub.post("integrator_icu", f"/assets/{card('ZC-1')}/identifiers", LINK)
        assert (response.status_code, len(hub.published)) == (202, 1)


class TestAvailability:
    async def test_the_summary_has_only_the_department_row(self, hub: Harness) -> None:
        """An ER key sees the ER's ventilators, totals over them alone."""
        body = (await hub.get("er", "/availability", params={"type": "呼吸机"})).json()
        assert (field(body, "department_name"), body["totals"]["total"], body["total"]) == (["急诊科"], 1, 1)

    async def test_the_device_list_is_scoped(self, hub: Harness) -> None:
        """/availability/devices lists the department's devices; another department is an empty page."""
        own = (await hub.get("equip", "/availability/devices")).json()
        other = (await hub.get("equip", "/availability/devices", params={"department": "0101"})).json()
        assert (set(field(own, "department_code")), own["total"], other["total"]) == ({"0901"}, 2, 0)


class TestInventory:
    async def test_stock_at_the_departments_places_only(self, hub: Harness) -> None:
        """The ICU key (by code) sees the ICU's gloves, not the store's stock; the unscoped key sees all."""
        own = (await hub.get("icu_code", "/inventory/stock")).json()
        every = (await hub.get("all", "/inventory/stock")).json()
        assert (field(own, "department_name"), field(own, "on_hand"), every["total"]) == (
            ["重症医学科"],
            ["40"],
            3,
        )

    async def test_stock_csv_obeys_the_scope(self, hub: Harness) -> None:
        """The CSV export of the stock holds the ICU's row only."""
        response = await hub.get("icu_code", "/inventory/stock", headers={"Accept": "text/csv"})
        rows = response.text.lstrip("\ufeff").splitlines()[1:]
        assert (len(rows), "重症医学科" in rows[0], "中心库房" in response.text) == (1, True, False)

    async def test_stock_of_another_department_is_an_empty_page(self, hub: Harness) -> None:
        """The ICU asking for the store's stock gets an empty page."""
        body = (await hub.get("icu_code", "/inventory/stock", params={"department": "9001"})).json()
        assert (body["items"], body["total"]) == ([], 0)

    async def test_alerts_distribution_and_item_places(self, hub: Harness) -> None:
        """Alerts, distribution and an item's places are the department's; the store has no alert."""
        alerts = (await hub.get("icu_code", "/inventory/alerts")).json()
        store_alerts = (await hub.get("store", "/inventory/alerts")).json()
        spread = (await hub.get("icu_code", "/inventory/distribution", params={"item": inv.GLOVES})).json()
        item = (await hub.get("icu_code", f"/inventory/items/{inv.GLOVES}")).json()
        assert (alerts["total"], store_alerts["total"]) == (1, 0)
        assert [(r["department_name"], r["on_hand"]) for r in spread["items"]] == [("重症医学科", "40")]
        assert (item["on_hand"], [p["department_code"] for p in item["positions"]]) == ("40", ["0301"])

    async def test_the_item_master_is_not_scoped(self, hub: Harness) -> None:
        """The item master is a catalogue: a scoped key lists every item."""
        assert (await hub.get("icu_code", "/inventory/items")).json()["total"] == 2

    async def test_a_trace_shows_the_departments_steps(self, hub: Harness) -> None:
        """Stent S2: the theatre sees its use (patient token); the store its receipt and transfer, not
        the patient; the ICU, which never held it, the unknown-code 404."""
        theatre = (await hub.get("theatre", "/inventory/trace/S2")).json()["units"][0]
        store = (await hub.get("store", "/inventory/trace/S2")).json()["units"][0]
        icu = await hub.get("icu_code", "/inventory/trace/S2")
        assert ([s["kind"] for s in theatre["steps"]], theatre["patient_token"]) == (
            ["transferred", "consumed"],
            "PT-2",
        )
        assert ([s["kind"] for s in store["steps"]], store["patient_token"], store["department_code"]) == (
            ["received", "transferred"],
            None,
            None,
        )
        assert (icu.status_code, icu.json()["detail"]) == (404, "no unit or lot matches this code")

    async def test_a_lot_trace_shows_the_departments_ledger_and_stock(self, hub: Harness) -> None:
        """Gloves lot G1 for the ICU: the transfer in, the use, and what is left there."""
        body = (await hub.get("icu", f"/inventory/trace/(01){GLOVES_GTIN}(10)G1")).json()
        (lot,) = body["lots"]
        assert [s["kind"] for s in lot["steps"]] == ["transferred", "consumed"]
        assert [(r["department_name"], r["on_hand"]) for r in lot["on_hand"]] == [("重症医学科", "40")]

    async def test_a_recall_lists_the_departments_stock_and_patients(self, hub: Harness) -> None:
        """Lot L1: the theatre sees its two patients and no stock; the store its unit left, no patient."""
        theatre = (await hub.get("theatre", "/inventory/recall", params={"lot": "L1"})).json()
        store = (await hub.get("store", "/inventory/recall", params={"lot": "L1"})).json()
        assert ([r["patient_token"] for r in theatre["consumed"]], theatre["on_hand"]) == (
            ["PT-1", "PT-2"],
            [],
        )
        assert (theatre["consumed_total"], theatre["on_hand_total"]) == ("2", "0")
        assert ([r["serials"] for r in store["on_hand"]], store["consumed"], store["on_hand_total"]) == (
            [["S3"]],
            [],
            "1",
        )

    async def test_trace_and_recall_are_recorded_with_the_key(self, hub: Harness) -> None:
        """Each audited read names the key, its department, the action and the code or lot asked for."""
        await hub.get("theatre", "/inventory/trace/S2")
        await hub.get("icu_code", "/inventory/trace/S2")
        await hub.get("store", "/inventory/recall", params={"lot": "L1"})
        got = []
        for event in hub.recorded:
            assert isinstance(event, AccessRecorded)
            p = event.payload
            got.append((p.action, p.resource, p.key_id, p.department, p.outcome))
        assert got == [
            ("inventory.trace", "S2", hub.keys["theatre"][0], "0203", "allowed"),
            ("inventory.trace", "S2", hub.keys["icu_code"][0], "0301", "allowed"),
            ("inventory.recall", "lot=L1", hub.keys["store"][0], "9001", "allowed"),
        ]


class TestWorkOrders:
    async def test_reported_by_or_on_a_device_of_the_department(self, hub: Harness) -> None:
        """The ER sees the order it reported and the ICU's report on its device; the ICU its two reports."""
        er = (await hub.get("er", "/workorders")).json()
        icu = (await hub.get("icu", "/workorders")).json()
        every = (await hub.get("all", "/workorders")).json()
        assert (field(er, "workorder_id"), er["total"]) == (["WO-3", "WO-2"], 2)
        assert field(icu, "workorder_id") == ["WO-2", "WO-1"]
        assert every["total"] == 3

    async def test_department_filters_within_the_scope(self, hub: Harness) -> None:
        """The ER filtering by the ICU as reporter gets the ICU's report on the ER's device only."""
        body = (await hub.get("er", "/workorders", params={"department": "重症医学科"})).json()
        assert field(body, "workorder_id") == ["WO-2"]

    async def test_another_departments_work_order_is_404(self, hub: Harness) -> None:
        """WO-1 (ICU, on the ICU's device) answers the ER as an unknown id would."""
        foreign = await hub.get("er", "/workorders/WO-1")
        unknown = await hub.get("er", "/workorders/WO-nope")
        assert (foreign.status_code, foreign.json()["detail"]) == (404, "no work order with id 'WO-1'")
        assert unknown.status_code == 404
        assert (await hub.get("er", "/workorders/WO-2")).status_code == 200

    async def test_kpis_count_the_departments_devices_only(self, hub: Harness) -> None:
        """Per department, the ER key gets the ER's row alone; asking for the ICU, nothing."""
        own = (await hub.get("er", "/kpis", params={"group_by": "department"})).json()
        other = (await hub.get("er", "/kpis", params={"group_by": "department", "department": "ICU"})).json()
        every = (await hub.get("all", "/kpis", params={"group_by": "department"})).json()
        assert ([(r["key"], r["devices"]) for r in own["items"]], other["total"]) == ([("ER", 1)], 0)
        # WO-3 names a device the hub does not know: its group has no department, for unscoped keys only.
        assert [r["key"] for r in every["items"]] == ["ER", "ICU", None]


class TestCompliance:
    async def test_due_items_of_the_departments_devices(self, hub: Harness) -> None:
        """The ER sees its ventilator's obligations only; asking for the ICU's, an empty page."""
        own = (await hub.get("er", "/compliance/due", params={"within": "3660d"})).json()
        other = (
            await hub.get("er", "/compliance/due", params={"within": "3660d", "department": "ICU"})
        ).json()
        every = (await hub.get("all", "/compliance/due", params={"within": "3660d"})).json()
        assert set(field(own, "asset_id")) == {"A2"}
        assert (other["total"], set(field(every, "asset_id"))) == (0, {"A1", "A2"})
