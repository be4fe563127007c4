"""Property tests: HRP document parsers and generated document exports."""

from __future__ import annotations

import csv
import io
from datetime import date, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters.hrp.documents import parse_period, parse_term
from tests.unit.adapters._hrp import run

DATES = st.dates(min_value=date(1990, 1, 1), max_value=date(2060, 12, 31))


def _written(day: date, style: int) -> str:
    return (
        day.isoformat(),
        f"{day.year}/{day.month}/{day.day}",
        day.strftime("%Y.%m.%d"),
        f"{day.year}年{day.month}月{day.day}日",
    )[style]


@given(DATES, st.sampled_from(["{y}-{m:02d}", "{y}/{m}", "{y}{m:02d}", "{y}年{m}月", "{y}.{m:02d}"]))
def test_period_round_trips(day: date, pattern: str) -> None:
    """Any month written any common way reads back as YYYY-MM with its last day."""
    period, last = parse_period(pattern.format(y=day.year, m=day.month))
    assert period == f"{day.year:04d}-{day.month:02d}"
    assert (last.year, last.month) == (day.year, day.month)
    assert (last + timedelta(days=1)).day == 1  # the month's last day


@given(DATES, DATES, st.integers(0, 3), st.sampled_from(["至", "到", "~", "-", " — "]))
def test_term_round_trips(first: date, last: date, style: int, separator: str) -> None:
    """A term written as two dates and a separator reads back as those two dates."""
    assert parse_term(f"{_written(first, style)}{separator}{_written(last, style)}") == (first, last)


HEADER = [
    "单据类型",
    "单据号",
    "资产编号",
    "日期",
    "调入科室",
    "验收结论",
    "结论",
    "期间",
    "累计折旧",
    "净值",
    "合同编号",
    "类型",
]
CELLS = st.one_of(
    st.text(max_size=10),
    st.sampled_from(
        ["", "2024-06-01", "2024-06-31", "ICU", "合格", "限用", "2024-06", "1,000.00", "维保", "x"]
    ),
)
TYPES = st.sampled_from(["调拨", "验收", "启用", "报废", "折旧", "维保合同", "计量", "台账", "盘亏", ""])


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(TYPES, *([CELLS] * (len(HEADER) - 1))).map(list), min_size=1, max_size=15))
def test_any_document_rows_are_accounted_for_and_deterministic(rows: list[list[str]]) -> None:
    """Whatever a mixed document export holds, each row is events or a failure, the same every time."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(HEADER)
    writer.writerows(rows)
    data = out.getvalue().encode("utf-8")
    first, second = run(data, "mixed.csv"), run(data, "mixed.csv")
    assert [e.event for e in first.events] == [e.event for e in second.events]
    assert first.failures == second.failures
    rows_seen = {e.position for e in first.events} | {f.position for f in first.failures}
    assert len(rows_seen) + len(first.skipped) == first.units
    assert not {e.position for e in first.events} & {f.position for f in first.failures}
