"""Properties: generated valid records always translate, alike in JSON and GBK XML; bytes never crash."""

from __future__ import annotations

import contextlib
from datetime import datetime
from decimal import Decimal
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.errors import MalformedMessage
from tests.unit.adapters._oa import json_export, mapping, run, xml_export

# Text an OA user may type: common Chinese characters (all in GBK), letters, digits, punctuation,
# XML's special characters, and inner spaces. Leading/trailing spaces are stripped by any export.
_ALPHABET = (
    "设备故障报警屏幕黑闪烁电池无法充开机维修更换主板正常王李张刘工程师组ABCxyz0123456789-_/（）()，。&<>\"' "
)
TEXT = st.text(alphabet=_ALPHABET, min_size=1, max_size=20).map(str.strip).filter(bool)
NUMBER = st.text(alphabet="ABCDEFGHJKLMNPQRSTUVWXYZ0123456789-", min_size=1, max_size=16).filter(
    lambda s: s.strip("-")
)
# Naive on purpose: OA exports write local wall-clock times.
EARLIEST, LATEST = datetime(2000, 1, 1), datetime(2099, 12, 31)  # noqa: DTZ001
MOMENT = st.datetimes(min_value=EARLIEST, max_value=LATEST).map(lambda d: d.replace(second=0, microsecond=0))
TIME_FORMATS = (
    "%Y-%m-%d %H:%M:%S",
    "%Y/%m/%d %H:%M",
    "%Y年%m月%d日 %H时%M分",
    "%Y-%m-%dT%H:%M:%S+08:00",
    "%Y%m%d%H%M%S",
)
AMOUNT = st.decimals(min_value=0, max_value=10_000_000, places=2, allow_nan=False, allow_infinity=False)


def words(kind: str) -> st.SearchStrategy[str]:
    return st.sampled_from(mapping().kinds[kind].values)  # type: ignore[index]


def department() -> st.SearchStrategy[str]:
    entries = mapping().departments
    return st.sampled_from([name for e in entries for name in (e.code, e.name, *e.aliases)])


@st.composite
def times(draw: st.DrawFn) -> str:
    return draw(MOMENT).strftime(draw(st.sampled_from(TIME_FORMATS)))


@st.composite
def amounts(draw: st.DrawFn) -> str:
    value: Decimal = draw(AMOUNT)
    return draw(st.sampled_from([f"{value:.2f}", f"{value:,.2f}", f"￥{value:,.2f}", f"{value:.2f}元"]))


@st.composite
def record(draw: st.DrawFn) -> dict[str, Any]:
    kind = draw(st.sampled_from(["request", "approval", "assignment", "start", "hold", "completion", "closure",
                                 "cancellation", "loan", "return"]))  # fmt: skip
    base: dict[str, Any] = {"单据类型": draw(words(kind)), "发生时间": draw(times())}
    if kind in ("loan", "return"):
        base |= {"借用单号": draw(NUMBER), "资产编号": draw(NUMBER)}
    else:
        base |= {"工单号": draw(NUMBER)}
    optional = draw(st.booleans())
    if kind == "request":
        base |= {"资产编号" if draw(st.booleans()) else "设备编号": draw(NUMBER), "报修科室": draw(department()),
                 "故障描述": draw(TEXT), "紧急程度": draw(st.sampled_from(list(mapping().priorities.codes))),
                 "报修方式": draw(st.sampled_from([*mapping().channels.codes, "微信"])), "报修人": draw(TEXT)}  # fmt: skip
    elif kind == "approval":
        base |= {"审批结果": draw(st.sampled_from(list(mapping().approval_results.codes))),
                 "审批金额": draw(amounts()), "审批人": draw(TEXT),
                 "审批级别": draw(st.sampled_from(["1", "2级", "三级", "设备科"]))}  # fmt: skip
    elif kind == "assignment":
        base |= {"维修工程师": draw(TEXT), "维修班组": draw(TEXT)}
    elif kind == "completion" and optional:
        base |= {"处理结果": draw(TEXT), "维修工时": f"{draw(AMOUNT):.1f}", "维修费用": draw(amounts()),
                 "停机时长": str(draw(st.integers(0, 100_000))),
                 "更换配件": [{"配件名称": draw(TEXT), "数量": str(draw(st.integers(1, 9))), "单价": f"{draw(AMOUNT):.2f}"}
                              for _ in range(draw(st.integers(1, 3)))]}  # fmt: skip
    elif kind == "loan":
        base |= {"借用科室": draw(department()), "借出科室": draw(department()), "责任人": draw(TEXT),
                 "预计归还时间": draw(MOMENT).strftime("%Y-%m-%d")}  # fmt: skip
    elif kind == "return" and optional:
        base |= {"归还状况": draw(TEXT)}
    elif kind in ("hold", "cancellation") and optional:
        base |= {"原因": draw(TEXT)}
    return base


@st.composite
def exports(draw: st.DrawFn) -> list[dict[str, Any]]:
    records = draw(st.lists(record(), min_size=1, max_size=6))
    return [r | {"单据号": f"LC{i:05d}"} for i, r in enumerate(records)]


class TestGeneratedRecords:
    @settings(max_examples=150, deadline=None)
    @given(exports())
    def test_valid_records_always_translate(self, records: list[dict[str, Any]]) -> None:
        """Any export of valid records of any kind translates every record, in JSON and in GBK XML alike."""
        from_json = run(json_export(*records), "export.json")
        from_xml = run(xml_export(*records, encoding="gbk"), "export.xml")
        assert from_json.failures == ()
        assert from_xml.failures == ()
        assert len(from_json.events) == len(records)
        assert [(e.event.event_id, e.event.payload) for e in from_json.events] == [
            (e.event.event_id, e.event.payload) for e in from_xml.events
        ]


class TestArbitraryInput:
    @settings(max_examples=300, deadline=None)
    @given(st.binary(max_size=400), st.sampled_from(["x.json", "x.xml", "x.jsonl", "webhook"]))
    def test_translate_raises_only_malformed(self, data: bytes, filename: str) -> None:
        """Whatever the bytes, translation gives a Translation or raises MalformedMessage."""
        with contextlib.suppress(MalformedMessage):
            run(data, filename)

    @settings(max_examples=200, deadline=None)
    @given(st.lists(st.dictionaries(st.sampled_from(["单据类型", "工单号", "资产编号", "报修科室", "故障描述",
                                                      "报修时间", "维修费用", "更换配件", "借用单号", "审批结果"]),
                                    st.one_of(st.none(), st.integers(), TEXT, st.lists(TEXT, max_size=2))),
                    max_size=5))  # fmt: skip
    def test_odd_records_fail_cleanly(self, records: list[dict[str, Any]]) -> None:
        """Records with odd values become events or failures, one outcome per record, never an exception."""
        result = run(json_export(*records))
        assert len(result.events) + len(result.failures) + len(result.skipped) == len(records) == result.units
