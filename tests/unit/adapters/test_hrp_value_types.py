"""HRP too: a ledger saved as XLSX (a float 268000, a date cell) and as CSV ("268000.00",
"2019-03-01") gives the same events: decimals as decimals in one form, dates as dates."""

from __future__ import annotations

import io
from datetime import date, datetime
from decimal import Decimal

import openpyxl
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.unit.adapters._hrp import run
from tests.unit.adapters._spd import table

HEADER = ["资产编号", "资产名称", "使用科室", "购置日期", "原值", "资产状态"]
PRICES = st.decimals(min_value=Decimal("0.01"), max_value=Decimal(10**8), places=2)
DAYS = st.dates(min_value=date(1990, 1, 1), max_value=date(2099, 12, 31))


def _xlsx(price: Decimal, day: date, *, as_datetime: bool) -> bytes:
    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(HEADER)
    # Excel has no time zones: a date cell reads back as a naive datetime at midnight.
    cell_day = datetime(day.year, day.month, day.day) if as_datetime else day  # noqa: DTZ001
    number = int(price) if price == price.to_integral_value() else float(price)
    sheet.append(["ZC-2019-0001", "呼吸机", "重症医学科", cell_day, number, "在用"])
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


@settings(max_examples=30, deadline=None)
@given(price=PRICES, day=DAYS, as_datetime=st.booleans(), padded=st.booleans())
def test_xlsx_and_csv_ledgers_give_the_same_asset(
    price: Decimal, day: date, as_datetime: bool, padded: bool
) -> None:
    text = format(price, "f") if padded else format(price.normalize(), "f")
    csv_row = ["ZC-2019-0001", "呼吸机", "重症医学科", day.isoformat(), text, "在用"]
    from_csv = run(table(HEADER, csv_row), "台账.csv")
    from_xlsx = run(_xlsx(price, day, as_datetime=as_datetime), "台账.xlsx")
    assert not from_csv.failures, [f.reason for f in from_csv.failures]
    assert not from_xlsx.failures, [f.reason for f in from_xlsx.failures]
    [a] = [e.event.payload for e in from_csv.events]  # type: ignore[attr-defined]
    [b] = [e.event.payload for e in from_xlsx.events]  # type: ignore[attr-defined]
    assert a.model_dump_json() == b.model_dump_json()
    details = a.model_dump()["details"]
    money = [v for v in details.values() if isinstance(v, dict) and "amount" in v]
    assert [m["amount"] for m in money] == [price], details
    assert day in details.values(), details


def test_268000_reads_the_same_from_both() -> None:
    csv_row = ["ZC-2019-0001", "呼吸机", "重症医学科", "2019-03-01", "268000.00", "在用"]
    [a] = run(table(HEADER, csv_row), "台账.csv").events
    [b] = run(_xlsx(Decimal(268000), date(2019, 3, 1), as_datetime=True), "台账.xlsx").events
    assert a.event.payload.model_dump_json() == b.event.payload.model_dump_json()  # type: ignore[attr-defined]
