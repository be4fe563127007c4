"""CSV export of list responses: content negotiation and flattening."""

from __future__ import annotations

import csv
import io

import httpx
from fastapi import FastAPI
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hub.api.csv_export import CsvExportMiddleware, escape_cell, flatten, to_csv, wants_csv


def app() -> FastAPI:
    a = FastAPI()
    a.add_middleware(CsvExportMiddleware)

    @a.get("/things")
    def things() -> dict[str, object]:
        return {
            "items": [
                {
                    "id": 1,
                    "name": "呼吸机",
                    "dept": {"code": "0101", "name": "重症医学科"},
                    "tags": ["a", "b"],
                }
            ],
            "total": 1,
        }

    @a.get("/one")
    def one() -> dict[str, object]:
        return {"id": 1}

    return a


class TestNegotiation:
    def test_csv_only_when_preferred(self) -> None:
        """text/csv wins only when it is preferred over JSON by q-value or order."""
        assert wants_csv("text/csv")
        assert wants_csv("text/csv, application/json;q=0.5")
        assert not wants_csv("application/json, text/csv")
        assert not wants_csv("application/json")
        assert not wants_csv("text/csv;q=0")
        assert not wants_csv("")


class TestMiddleware:
    async def test_list_becomes_csv_with_bom_and_dotted_columns(self) -> None:
        """A list endpoint answers CSV (UTF-8 with BOM for Excel), nested fields as dotted columns."""
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app()), base_url="http://t") as c:
            r = await c.get("/things", headers={"Accept": "text/csv"})
        assert r.headers["content-type"].startswith("text/csv")
        assert r.content.startswith("\ufeff".encode())
        rows = list(csv.DictReader(io.StringIO(r.content.decode("utf-8-sig"))))
        assert rows == [
            {"id": "1", "name": "呼吸机", "dept.code": "0101", "dept.name": "重症医学科", "tags": "a;b"}
        ]

    async def test_non_list_and_json_requests_are_untouched(self) -> None:
        """Responses without `items`, and requests preferring JSON, stay JSON."""
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app()), base_url="http://t") as c:
            one = await c.get("/one", headers={"Accept": "text/csv"})
            things = await c.get("/things")
        assert one.json() == {"id": 1}
        assert things.json()["total"] == 1


class TestFormulaEscaping:
    def test_cells_that_start_a_formula_get_a_leading_quote(self) -> None:
        """OWASP CSV injection: =, +, -, @, tab and CR at the start are quoted; the text is kept after it."""
        for value in (
            '=HYPERLINK("http://evil.example","点此")',
            "+cmd|' /C calc'!A0",
            "-1+1",
            "@SUM(A1:A9)",
            "\tx",
            "\rx",
        ):
            assert escape_cell(value) == "'" + value

    def test_plain_numbers_and_ordinary_text_are_left_alone(self) -> None:
        """A negative quantity stays a number for the spreadsheet; text without a formula start is untouched."""
        for value in ("-3", "+1.5", "-0.25", "12", "", "呼吸机 =A1", "a-b", "'quoted"):
            assert escape_cell(value) == value

    def test_export_escapes_cells_and_column_titles(self) -> None:
        text = to_csv([{"name": '=HYPERLINK("http://x")', "qty": -2, "@note": "ok"}])
        rows = list(csv.reader(io.StringIO(text.removeprefix("\ufeff"), newline="")))
        assert rows == [["name", "qty", "'@note"], ['\'=HYPERLINK("http://x")', "-2", "ok"]]


# No deadline and no slow-generation check: the suite shares two cores with other jobs, and a
# stall there once failed this test on timing alone (a FailedHealthCheck), never on a value.
@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.dictionaries(
            st.sampled_from(["a", "b", "c"]), st.one_of(st.none(), st.integers(), st.text()), min_size=1
        ),
        max_size=5,
    )
)
def test_csv_round_trips_every_value(items: list[dict[str, object]]) -> None:
    """Every flattened value comes back from the CSV as written (formula starts escaped), whatever the text."""
    text = to_csv(items)  # type: ignore[arg-type]
    rows = list(csv.DictReader(io.StringIO(text.removeprefix("\ufeff"), newline="")))
    assert len(rows) == len(items)
    for row, item in zip(rows, items, strict=True):
        for key, value in flatten(item).items():  # type: ignore[arg-type]
            assert row[key] == escape_cell(value)
