"""/inventory through the real wiring (build_hub + build_api), on SQLite and PostgreSQL read models."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
from sqlalchemy import Engine

from hub.api.params import window_days
from schemas.audit import AccessRecorded
from schemas.envelope import EventBase
from tests.e2e.conftest import open_api
from tests.unit.projections.test_inventory_factories import (
    BACKENDS,
    GLOVES,
    ICU,
    STENT,
    STENT_GTIN,
    Feed,
    at,
    consumed,
    defined,
    gs1,
    inventory_engine,
    received,
    shared_database,
    stent_master,
    threshold,
    transferred,
)

GLOVES_GTIN = "06947517459492"
LINK = f"https://id.gs1.org/01/{STENT_GTIN}/10/L1/21/S2"


@pytest.fixture(scope="module", params=BACKENDS)
def engine(request: pytest.FixtureRequest) -> Iterator[Engine]:
    """Stents by serial (two used on patients), gloves by lot with the ICU below its minimum."""
    with shared_database(request) as url:
        for eng in inventory_engine(url):
            Feed(eng).apply(
                stent_master(),
                defined("def-gloves", GLOVES, name="检查手套", gtin=GLOVES_GTIN, category="防护用品"),
                threshold("h-icu", GLOVES, ICU, 50, 200, when=at(0)),
                received(
                    "r-stent", STENT, 3, lot="L1", expiry=date(2024, 6, 20), serials=["S1", "S2", "S3"],
                    supplier="华东医疗", po_number="PO-7", when=at(0),
                ),
                transferred("t-stent", STENT, 2, serials=["S1", "S2"], when=at(24)),
                consumed("c-s1", STENT, serial="S1", patient_token="PT-1", procedure_code="36.06", when=at(48)),
                consumed("c-s2", STENT, lot=None, udi=LINK, patient_token="PT-2", system="his", when=at(50)),
                received("r-gloves", GLOVES, 500, lot="G1", expiry=date(2025, 1, 1), barcode=gs1(GLOVES_GTIN, lot="G1")),
                transferred("t-gloves", GLOVES, 100, lot="G1", target=ICU, when=at(30)),
                consumed("c-gloves", GLOVES, 60, lot="G1", place=ICU, when=at(40)),
            )  # fmt: skip
            yield eng


class FixedClock:
    def now(self) -> datetime:
        return datetime(2024, 6, 1, 9, 0, tzinfo=UTC)


@pytest.fixture
def recorded() -> list[EventBase]:
    """The access events the app records (trace and recall are audited reads)."""
    return []


@pytest.fixture
async def client(
    engine: Engine, recorded: list[EventBase], tmp_path: Path
) -> AsyncIterator[httpx.AsyncClient]:
    async def access_log(event: EventBase) -> None:
        recorded.append(event)

    url = engine.url.render_as_string(hide_password=False)
    async with open_api(url, tmp_path / "hub", clock=FixedClock(), access_log=access_log) as w:
        yield w.http


def accesses(recorded: list[EventBase]) -> list[tuple[str, str, str, str]]:
    """(action, resource, key id, outcome) of each recorded access event."""
    out: list[tuple[str, str, str, str]] = []
    for event in recorded:
        assert isinstance(event, AccessRecorded)
        p = event.payload
        out.append((p.action, p.resource, p.key_id, p.outcome))
    return out


class TestStock:
    async def test_lists_a_page_of_stock(self, client: httpx.AsyncClient) -> None:
        """GET /inventory/stock: rows with stock, exact decimals, the list shape every list endpoint has."""
        body = (await client.get("/inventory/stock")).json()
        rows = [(r["item_id"], r["department_name"], r["lot"], r["on_hand"]) for r in body["items"]]
        assert rows == [
            (GLOVES, "重症医学科", "G1", "40"),
            (GLOVES, "中心库房", "G1", "400"),
            (STENT, "中心库房", "L1", "1"),
        ]
        assert (body["total"], body["limit"], body["offset"]) == (3, 50, 0)

    @pytest.mark.parametrize(
        ("params", "expected"),
        [
            ({"item": "GLOVES"}, 2),
            ({"department": "重症医学科"}, 1),
            ({"below_minimum": "true"}, 1),
            ({"high_value": "true"}, 1),
            ({"lot": "G1", "department": "9001"}, 1),
            ({"include_empty": "true", "item": STENT}, 2),
        ],
    )
    async def test_filters(self, client: httpx.AsyncClient, params: dict[str, str], expected: int) -> None:
        """Filters combine; include_empty brings back the emptied theatre row."""
        body = (await client.get("/inventory/stock", params=params)).json()
        assert (len(body["items"]), body["total"]) == (expected, expected)

    async def test_refuses_an_oversized_page(self, client: httpx.AsyncClient) -> None:
        """limit is capped: a client asking for 10,000 rows gets 422, not a table scan."""
        assert (await client.get("/inventory/stock", params={"limit": 10_000})).status_code == 422

    async def test_exports_csv_on_request(self, client: httpx.AsyncClient) -> None:
        """Accept: text/csv gives the same rows as a spreadsheet."""
        response = await client.get("/inventory/stock", headers={"Accept": "text/csv"})
        assert response.headers["content-type"].startswith("text/csv")
        header = response.text.lstrip("\ufeff").splitlines()[0].split(",")
        assert {"item_id", "department_name", "lot", "on_hand"} <= set(header)


class TestAlertsAndDistribution:
    async def test_alerts_list_places_below_minimum(self, client: httpx.AsyncClient) -> None:
        """GET /inventory/alerts: the ICU gloves, with the quantity back to the maximum and since when."""
        (alert,) = (await client.get("/inventory/alerts")).json()["items"]
        assert (alert["item_id"], alert["on_hand"], alert["minimum"], alert["suggested_reorder"]) == (
            GLOVES,
            "40",
            "50",
            "160",
        )
        assert alert["below_since"] == "2024-05-03T00:00:00Z"

    async def test_distribution_per_department(self, client: httpx.AsyncClient) -> None:
        """GET /inventory/distribution?item=: each department's quantity, most first."""
        body = (await client.get("/inventory/distribution", params={"item": GLOVES})).json()
        assert [(r["department_name"], r["on_hand"]) for r in body["items"]] == [
            ("中心库房", "400"),
            ("重症医学科", "40"),
        ]

    async def test_distribution_needs_an_item(self, client: httpx.AsyncClient) -> None:
        """Without ?item= the request is incomplete."""
        assert (await client.get("/inventory/distribution")).status_code == 422


class TestExpiring:
    async def test_uses_the_injected_clock_by_default(self, client: httpx.AsyncClient) -> None:
        """Without as_of, 'today' is the clock's: 1 June, so the stents (20 June) expire within 30 days."""
        body = (await client.get("/inventory/expiring", params={"within": "30d"})).json()
        assert [(r["item_id"], r["days_left"], r["expired"]) for r in body["items"]] == [(STENT, 19, False)]

    async def test_as_of_moves_the_reference_date(self, client: httpx.AsyncClient) -> None:
        """as_of after the stents' expiry lists them as expired, and a wide window adds the gloves."""
        body = (
            await client.get("/inventory/expiring", params={"within": "52w", "as_of": "2024-07-01"})
        ).json()
        assert [(r["item_id"], r["expired"]) for r in body["items"]] == [
            (STENT, True),
            (GLOVES, False),
            (GLOVES, False),
        ]

    async def test_refuses_a_window_that_is_not_days(self, client: httpx.AsyncClient) -> None:
        """within=soon is a 422 that says what is expected."""
        response = await client.get("/inventory/expiring", params={"within": "soon"})
        assert response.status_code == 422
        assert "30d" in response.json()["detail"]

    @pytest.mark.parametrize(("text", "days"), [("30d", 30), ("2w", 14), ("7", 7), (" 10D ", 10)])
    def test_parse_within(self, text: str, days: int) -> None:
        """Days, weeks or a bare number."""
        assert window_days(text) == days


class TestItems:
    async def test_lists_the_master(self, client: httpx.AsyncClient) -> None:
        """GET /inventory/items with a filter."""
        body = (await client.get("/inventory/items", params={"high_value": "true"})).json()
        assert [(r["item_id"], r["price"]) for r in body["items"]] == [(STENT, "705.00")]

    async def test_one_item_with_its_places(self, client: httpx.AsyncClient) -> None:
        """GET /inventory/items/{id}: total and per-place stock with thresholds."""
        body = (await client.get(f"/inventory/items/{GLOVES}")).json()
        assert (body["on_hand"], len(body["positions"]), body["positions"][0]["minimum"]) == ("440", 2, "50")

    async def test_an_unknown_item_is_404(self, client: httpx.AsyncClient) -> None:
        """No such item: 404 with a reason."""
        assert (await client.get("/inventory/items/ITM-none")).status_code == 404


class TestTraceAndRecall:
    @pytest.mark.parametrize(
        "path",
        [
            "/inventory/trace/S2",
            f"/inventory/trace/(01){STENT_GTIN}(10)L1(21)S2",
            f"/inventory/trace/{quote(f'01{STENT_GTIN}10L1' + chr(29) + '21S2', safe='')}",
            f"/inventory/trace/{quote(LINK, safe='')}",
            f"/inventory/trace/{LINK}",
        ],
    )
    async def test_traces_a_unit_from_any_form_of_its_code(
        self, client: httpx.AsyncClient, path: str
    ) -> None:
        """Serial, GS1 human-readable, element string with GS, Digital Link (encoded or not): same path."""
        response = await client.get(path)
        assert response.status_code == 200
        (unit,) = response.json()["units"]
        assert [s["kind"] for s in unit["steps"]] == ["received", "transferred", "consumed"]
        assert (
            unit["steps"][0]["po_number"],
            unit["steps"][1]["department_name"],
            unit["patient_token"],
        ) == (
            "PO-7",
            "手术室",
            "PT-2",
        )

    async def test_traces_a_lot(self, client: httpx.AsyncClient) -> None:
        """A GTIN + lot label of a lot-tracked item gives the lot's path."""
        body = (await client.get(f"/inventory/trace/(01){GLOVES_GTIN}(10)G1")).json()
        assert [s["kind"] for s in body["lots"][0]["steps"]] == ["received", "transferred", "consumed"]

    async def test_an_unknown_code_is_404(self, client: httpx.AsyncClient) -> None:
        """Nothing matches: 404."""
        assert (await client.get("/inventory/trace/NOPE")).status_code == 404

    async def test_a_trace_is_recorded_on_the_audit_ledger(
        self, client: httpx.AsyncClient, recorded: list[EventBase]
    ) -> None:
        """Each trace (it shows patient tokens) records who asked for which code, before answering."""
        assert (await client.get("/inventory/trace/S2")).status_code == 200
        assert (await client.get("/inventory/trace/NOPE")).status_code == 404
        assert accesses(recorded) == [
            ("inventory.trace", "S2", "anonymous", "allowed"),
            ("inventory.trace", "NOPE", "anonymous", "allowed"),
        ]

    async def test_a_recall_is_recorded_on_the_audit_ledger(
        self, client: httpx.AsyncClient, recorded: list[EventBase]
    ) -> None:
        """A recall (patients who received the lot) records the lot and narrowing asked for."""
        assert (await client.get("/inventory/recall", params={"lot": "L1", "gtin": STENT_GTIN})).is_success
        assert accesses(recorded) == [
            ("inventory.recall", f"lot=L1&gtin={STENT_GTIN}", "anonymous", "allowed"),
        ]

    @pytest.mark.parametrize("path", ["/inventory/trace/S2", "/inventory/recall?lot=L1"])
    async def test_when_the_read_cannot_be_recorded_nothing_is_served(
        self, engine: Engine, tmp_path: Path, path: str
    ) -> None:
        """When the audit ledger cannot take the record, 503 rather than serve patient tokens."""

        async def broken(_: EventBase) -> None:
            raise OSError("audit topic unavailable")

        url = engine.url.render_as_string(hide_password=False)
        async with open_api(url, tmp_path / "hub", access_log=broken) as w:
            response = await w.http.get(path)
        assert response.status_code == 503
        assert "PT-" not in response.text

    async def test_recall_lists_on_hand_and_patients(self, client: httpx.AsyncClient) -> None:
        """GET /inventory/recall?lot=: the unit still in the store and the two patients who received the lot."""
        body = (await client.get("/inventory/recall", params={"lot": "L1", "gtin": STENT_GTIN})).json()
        assert [(r["department_name"], r["on_hand"], r["serials"]) for r in body["on_hand"]] == [
            ("中心库房", "1", ["S3"])
        ]
        assert [(r["serials"], r["patient_token"]) for r in body["consumed"]] == [
            ("S1", "PT-1"),
            ("S2", "PT-2"),
        ]
        assert (body["on_hand_total"], body["consumed_total"], body["disposed"]) == ("1", "2", [])

    async def test_recall_needs_a_lot(self, client: httpx.AsyncClient) -> None:
        """Without ?lot= the request is incomplete."""
        assert (await client.get("/inventory/recall")).status_code == 422

    async def test_the_endpoints_are_documented(self, client: httpx.AsyncClient) -> None:
        """Every inventory endpoint appears in the OpenAPI document."""
        paths = set((await client.get("/openapi.json")).json()["paths"])
        assert {
            "/inventory/stock",
            "/inventory/alerts",
            "/inventory/distribution",
            "/inventory/expiring",
            "/inventory/items",
            "/inventory/items/{item_id}",
            "/inventory/trace/{code}",
            "/inventory/recall",
        } <= paths
