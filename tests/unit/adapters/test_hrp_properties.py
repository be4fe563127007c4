"""Property tests: any generated ledger translates deterministically and accounts for every row."""

from __future__ import annotations

import csv
import io
from datetime import date

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schemas.assets import AssetRegistered
from tests.unit.adapters._hrp import run

NAMES = st.text(alphabet="呼吸机监护仪输液泵注射ABC- 12", min_size=0, max_size=8)
DEPARTMENTS = st.sampled_from(["重症医学科(ICU)", "ICU", "急诊科", "康复医学科", "", "设备科"])
STATUSES = st.sampled_from(["在用", "闲置", "维修", "报废", "借出", "", "待报废"])
DATES = st.one_of(
    st.dates(min_value=date(1990, 1, 1), max_value=date(2030, 12, 31)).flatmap(
        lambda d: st.sampled_from(
            [
                d.isoformat(),
                f"{d.year}/{d.month}/{d.day}",
                d.strftime("%Y%m%d"),
                f"{d.year}年{d.month}月{d.day}日",
                d.strftime("%d.%m.%Y"),
            ]
        )
    ),
    st.sampled_from(["", "2019-02-30", "不详"]),
)
AMOUNTS = st.one_of(
    st.decimals(min_value=0, max_value=10_000_000, places=2).map(lambda v: f"{v:,.2f}"),
    st.sampled_from(["", "待定", "￥12,800.00", "35800元"]),
)
ROWS = st.lists(
    st.tuples(
        st.integers(0, 25).map(lambda n: "" if n == 0 else f"ZC-{n:03d}"),
        NAMES,
        DEPARTMENTS,
        DATES,
        AMOUNTS,
        STATUSES,
    ),
    min_size=1,
    max_size=25,
)


def ledger(rows: list[tuple[str, ...]], encoding: str) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(["XX市人民医院固定资产台账"])
    writer.writerow(["资产编号", "设备名称", "使用科室", "购置日期", "原值", "资产状态"])
    writer.writerows(rows)
    return out.getvalue().encode(encoding)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ROWS, st.sampled_from(["gbk", "utf-8-sig", "utf-8"]))
def test_generated_ledgers_translate_deterministically(rows: list[tuple[str, ...]], encoding: str) -> None:
    """Translating any generated ledger twice gives identical output, and every data row is accounted for."""
    payload = ledger(rows, encoding)
    first = run(payload, "gen.csv")
    second = run(payload, "gen.csv")
    assert [e.event.model_dump_json() for e in first.events] == [
        e.event.model_dump_json() for e in second.events
    ]
    assert first.failures == second.failures
    assert first.skipped == second.skipped

    data_lines = {i + 3 for i, row in enumerate(rows) if any(c.strip() for c in row)}
    event_lines = {e.location.line for e in first.events}
    failure_lines = {f.location.line for f in first.failures}
    skipped_lines = {int(s.split(":")[1]) for s in first.skipped}
    assert event_lines | failure_lines | skipped_lines == data_lines
    assert len(first.events) + len(first.failures) + len(first.skipped) == first.units == len(data_lines)

    subjects = [e.event.subject for e in first.events]
    assert len(subjects) == len(set(subjects)), "one event per card number"
    assert all(isinstance(e.event, AssetRegistered) for e in first.events)
