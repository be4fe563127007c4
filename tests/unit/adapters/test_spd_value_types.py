"""The same export saved as XLSX (typed cells: floats, ints, dates) or as CSV (text, in any of
the spellings exports use) gives the same events, byte for byte: decimals as decimals in one form,
dates as dates.
"""

from __future__ import annotations

import io
from datetime import date, datetime
from decimal import Decimal

import openpyxl
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.unit.adapters._spd import run, table

HEADER = [
    "单据类型",
    "入库单号",
    "入库日期",
    "库房",
    "物资编码",
    "物资名称",
    "数量",
    "单价",
    "批号",
    "有效期",
]
# Prices as a ledger holds them: up to 4 decimals (consumables are priced to the li), below 10^9.
PRICES = st.decimals(min_value=Decimal("0.0001"), max_value=Decimal(10**9), places=4)
DAYS = st.dates(min_value=date(2000, 1, 1), max_value=date(2099, 12, 31))


def _price_text(value: Decimal, style: int) -> str:
    plain = format(value, "f")
    padded = (
        format(value.quantize(Decimal("0.01")), "f") if value == value.quantize(Decimal("0.01")) else plain
    )
    grouped = f"{value:,f}"
    return [plain, padded, grouped, f"￥{padded}", f"{plain}元"][style]


def _date_text(day: date, style: int) -> str:
    return [
        day.isoformat(),
        f"{day.year}/{day.month}/{day.day}",
        f"{day:%Y%m%d}",
        f"{day.year}年{day.month}月{day.day}日",
        f"{day:%Y.%m.%d}",
    ][style]


def _xlsx(rows: list[list[object]]) -> bytes:
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.append(HEADER)
    for row in rows:
        sheet.append(row)
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


@st.composite
def lines(draw: st.DrawFn) -> tuple[list[object], list[str]]:
    """One receipt line as typed XLSX cells and as CSV text."""
    price, quantity = draw(PRICES), draw(st.integers(1, 5000))
    received, expiry = draw(DAYS), draw(DAYS)
    number, code = f"RK{draw(st.integers(1, 999)):04d}", f"GZ{draw(st.integers(1, 99)):05d}"
    midnight = datetime(received.year, received.month, received.day)  # noqa: DTZ001 - Excel cells have no zone
    excel_day: object = draw(st.sampled_from([received, midnight]))
    excel_quantity: object = draw(st.sampled_from([quantity, float(quantity)]))
    cells: list[object] = [
        "入库",
        number,
        excel_day,
        "中心库房",
        code,
        "支架",
        excel_quantity,
        float(price),
        "L1",
        expiry,
    ]
    texts = ["入库", number, _date_text(received, draw(st.integers(0, 4))), "中心库房", code, "支架",
             draw(st.sampled_from([str(quantity), f"{quantity}.00", f"{quantity:,}"])),
             _price_text(price, draw(st.integers(0, 4))), "L1", _date_text(expiry, draw(st.integers(0, 4)))]  # fmt: skip
    return cells, texts


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(lines(), min_size=1, max_size=6))
def test_xlsx_and_csv_give_the_same_events(rows: list[tuple[list[object], list[str]]]) -> None:
    from_xlsx = run(_xlsx([c for c, _ in rows]), "入库单.xlsx", message_id="m1")
    from_csv = run(table(HEADER, *[t for _, t in rows]), "入库单.csv", message_id="m1")
    assert not from_xlsx.failures, [f.reason for f in from_xlsx.failures]
    assert not from_csv.failures, [f.reason for f in from_csv.failures]

    def events(result) -> list[str]:  # type: ignore[no-untyped-def]
        return [e.event.model_dump_json(exclude={"source", "recorded_at"}) for e in result.events]

    assert events(from_xlsx) == events(from_csv)
    for emitted, (cells, _) in zip(from_csv.events, rows, strict=True):
        p = emitted.event.payload  # type: ignore[attr-defined]
        assert isinstance(p.unit_cost.amount, Decimal)
        assert p.unit_cost.amount == Decimal(str(cells[7]))
        assert isinstance(p.expiry, date)
