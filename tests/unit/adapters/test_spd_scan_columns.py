"""Every scan column of every SPD document is read as GS1, whatever form the code is in.

A vendor's `UDI` column (field `udi`) and its `条码`/`追溯码` column (field `barcode`) are read alike:
HRI with parentheses or braces, raw element strings with GS separators or stand-ins, DataMatrix
with its symbology identifier (FNC1 first) or with FNC1 sent as a leading GS or not at all, and
GS1 Digital Link. What the code says fills lot, expiry and serial where the row is silent, so an
on-hand unit received under a UDI column can be traced; item code and name travel on movements.
"""

from __future__ import annotations

from datetime import date
from urllib.parse import quote

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.unit.adapters._spd import run, table

KINDS = ["入库", "配送", "消耗", "报损", "盘点", "物资字典"]
FORMS = ["hri", "braces", "gs", "datamatrix", "fnc1_gs", "alias", "link"]
SCAN_TITLES = ["UDI", "UDI码", "条码", "追溯码", "医疗器械唯一标识"]
LOTS = st.text(alphabet="ABCDEFGHJKLMNPQRSTUVWXYZ0123456789", min_size=1, max_size=10)
SERIALS = st.text(alphabet="ABCDEFGHJKLMNPQRSTUVWXYZ0123456789-", min_size=1, max_size=12)
EXPIRIES = st.dates(min_value=date(2024, 7, 1), max_value=date(2040, 12, 31))


def _check(body: str) -> str:
    total = sum(int(c) * (3 if i % 2 == 0 else 1) for i, c in enumerate(reversed(body)))
    return body + str((10 - total % 10) % 10)


GTINS = st.text(alphabet="0123456789", min_size=13, max_size=13).map(_check)


def encode(form: str, gtin: str, expiry: date, lot: str, serial: str) -> str:
    yymmdd = f"{expiry:%y%m%d}"
    if form == "hri":
        return f"(01){gtin}(17){yymmdd}(10){lot}(21){serial}"
    if form == "braces":
        return f"{{01}}{gtin}{{17}}{yymmdd}{{10}}{lot}{{21}}{serial}"
    if form == "link":
        return f"https://id.gs1.org/01/{gtin}/10/{quote(lot)}/21/{quote(serial)}?17={yymmdd}"
    prefix, separator = {
        "gs": ("", "\x1d"),  # as a keyboard-wedge scanner types it, no symbology identifier
        "datamatrix": ("]d2", "\x1d"),  # GS1 DataMatrix: FNC1 first, sent as the identifier
        "fnc1_gs": ("\x1d", "\x1d"),  # FNC1 first sent as a GS character
        "alias": ("]d2", "<GS>"),  # the export could not hold the control character
    }[form]
    return f"{prefix}01{gtin}17{yymmdd}10{lot}{separator}21{serial}"


HEADER = [
    "单据类型",
    "单据号",
    "日期",
    "库房",
    "科室",
    "物资编码",
    "物资名称",
    "数量",
    "实盘数量",
    "报损原因",
]


def _row(kind: str, code: str) -> list[str]:
    department = {"配送": "ICU", "消耗": "手术室"}.get(kind, "")
    quantity = "" if kind in ("盘点", "物资字典") else "1"
    counted = "3" if kind == "盘点" else ""
    reason = "过期" if kind == "报损" else ""
    return [kind, "D-1", "2024-06-01", "中心库房", department, "GZ01004", "药物洗脱冠脉支架", quantity, counted,
            reason, code]  # fmt: skip


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    kind=st.sampled_from(KINDS),
    form=st.sampled_from(FORMS),
    title=st.sampled_from(SCAN_TITLES),
    gtin=GTINS,
    expiry=EXPIRIES,
    lot=LOTS,
    serial=SERIALS,
)
def test_a_scan_column_fills_what_the_row_leaves_out(  # noqa: PLR0917 - hypothesis passes each draw
    kind: str, form: str, title: str, gtin: str, expiry: date, lot: str, serial: str
) -> None:
    code = encode(form, gtin, expiry, lot, serial)
    result = run(table([*HEADER, title], _row(kind, code)))
    assert not result.failures, [f.reason for f in result.failures]
    (emitted,) = result.events
    p = emitted.event.payload  # type: ignore[attr-defined]
    if kind == "物资字典":
        assert p.gtin == gtin
        return
    assert (p.item_code, p.item_name) == ("GZ01004", "药物洗脱冠脉支架")
    assert p.lot == lot
    if kind == "入库":
        assert (p.expiry, p.serials, p.barcode.gtin) == (expiry, [serial], gtin)
    elif kind in ("配送", "报损"):
        assert p.serials == [serial]
    elif kind == "消耗":
        assert (p.serial, p.barcode.gtin, p.barcode.expiry) == (serial, gtin, expiry)


def test_a_udi_column_contradicting_the_row_is_a_problem_on_that_column() -> None:
    """A UDI whose lot is not the row's is caught like a barcode's, and named by its own column."""
    udi = encode("hri", _check("0690123456789"), date(2026, 1, 31), "LOT-A", "SN1")
    result = run(table(["单据类型", "日期", "库房", "物资编码", "数量", "批号", "UDI"], ["入库", "2024-06-01",
                       "中心库房", "GZ01004", "1", "LOT-B", udi]))  # fmt: skip
    (failure,) = result.failures
    assert "UDI" in failure.reason
    assert "LOT-A" in failure.reason
    assert "LOT-B" in failure.reason


def test_a_barcode_and_a_udi_that_disagree_are_a_problem() -> None:
    """Two scan columns on one row must name the same unit."""
    gtin = _check("0690123456789")
    barcode = encode("hri", gtin, date(2026, 1, 31), "LOT-A", "SN1")
    udi = encode("gs", gtin, date(2026, 1, 31), "LOT-A", "SN2")
    result = run(table(["单据类型", "日期", "库房", "物资编码", "数量", "条码", "UDI"], ["入库", "2024-06-01",
                       "中心库房", "GZ01004", "1", barcode, udi]))  # fmt: skip
    (failure,) = result.failures
    assert "SN1" in failure.reason
    assert "SN2" in failure.reason
