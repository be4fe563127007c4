"""Property tests: generated SPD exports translate deterministically and account for every row."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.unit.adapters._spd import run, table

HEADER = [
    "单据类型",
    "单据号",
    "日期",
    "库房",
    "科室",
    "物资编码",
    "批号",
    "有效期",
    "序列号",
    "数量",
    "条码",
    "报损原因",
]
TYPES = ["入库", "配送", "消耗", "报损"]
CODES = st.text(alphabet="ABCDEFGHJKLMNPQRSTUVWXYZ0123456789-", min_size=1, max_size=12)
SERIALS = st.lists(CODES, min_size=1, max_size=4, unique=True)
EXPIRIES = st.dates(min_value=date(2024, 7, 1), max_value=date(2040, 12, 31))


def _check(body: str) -> str:
    total = sum(int(c) * (3 if i % 2 == 0 else 1) for i, c in enumerate(reversed(body)))
    return body + str((10 - total % 10) % 10)


GTINS = st.text(alphabet="0123456789", min_size=13, max_size=13).map(_check)


@st.composite
def good_rows(draw: st.DrawFn) -> list[str]:
    """A receipt, distribution or disposal row whose barcode agrees with its columns."""
    kind = draw(st.sampled_from(["入库", "配送", "报损"]))
    lot, expiry, serials, gtin = draw(CODES), draw(EXPIRIES), draw(SERIALS), draw(GTINS)
    form = draw(st.sampled_from(["hri", "gs", "none", "private"]))
    code = {
        "hri": f"(01){gtin}(17){expiry:%y%m%d}(10){lot}(21){serials[0]}",
        "gs": f"]d201{gtin}17{expiry:%y%m%d}10{lot}\x1d21{serials[0]}",
        "none": "",
        "private": f"VENDOR:{lot}",
    }[form]
    department = "ICU" if kind == "配送" else ""
    reason = "过期" if kind == "报损" else ""
    return [kind, draw(CODES), "2024-06-01", "中心库房", department, draw(CODES), lot, expiry.isoformat(),
            ";".join(serials), str(len(serials)), code, reason]  # fmt: skip


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(good_rows(), min_size=1, max_size=20))
def test_consistent_rows_all_land_with_their_values(rows: list[list[str]]) -> None:
    """Rows whose barcodes agree with their columns all land, keeping lot, serials and the scan as written."""
    result = run(table(HEADER, *rows))
    assert not result.failures, [f.reason for f in result.failures]
    assert len(result.events) == len(rows)
    for emitted, row in zip(result.events, rows, strict=True):
        payload = emitted.event.payload
        assert (payload.lot, payload.serials, payload.quantity) == (
            row[6],
            row[8].split(";"),
            Decimal(row[9]),
        )
        barcode = getattr(payload, "barcode", None)
        if row[10] and barcode is not None:
            assert barcode.raw == row[10]
            assert (barcode.parse_error is None) == (not row[10].startswith("VENDOR:"))


CELLS = st.one_of(
    st.text(max_size=12),
    st.sampled_from(
        ["", "0", "-3", "12支", "2024-06-31", "2024-06-01 08:00", "眼科", "ICU", "(01)x", "召回", "N/A"]
    ),
)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.tuples(st.sampled_from([*TYPES, "调价", ""]), *([CELLS] * 4), CODES, *([CELLS] * 6)).map(list),
        min_size=1,
        max_size=15,
    ),
    st.sampled_from(["gbk", "utf-8", "utf-8-sig"]),
)
def test_any_rows_are_accounted_for_and_deterministic(rows: list[list[str]], encoding: str) -> None:
    """Whatever the cells hold, every data row is an event or a failure, and re-translation is identical."""
    try:
        data = table(HEADER, *rows, encoding=encoding)
    except UnicodeEncodeError:
        data = table(HEADER, *rows, encoding="utf-8")
    first, second = run(data), run(data)
    assert [e.event for e in first.events] == [e.event for e in second.events]
    assert first.failures == second.failures
    accounted = {e.position for e in first.events} | {f.position for f in first.failures}
    assert len(accounted) + len(first.skipped) == first.units
    for failure in first.failures:
        assert failure.location.file == "export.csv"
        assert failure.location.line is not None
        assert failure.reason
