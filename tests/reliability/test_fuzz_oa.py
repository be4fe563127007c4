"""Fuzzing the OA readers (XML, JSON, JSON Lines) and translator on the mutated bundled exports.

Byte mutations hit the parsers (encodings, declarations, markup, JSON punctuation); structural
JSON mutations (values replaced, keys dropped or added) reach the record builders behind a
parseable document. Only MalformedMessage may escape; every Failure names its file and line.
"""

from __future__ import annotations

import json

import pytest
from hypothesis import strategies as st

from adapters.errors import MalformedMessage
from tests.reliability.fuzzing import (
    BUDGETS,
    EXAMPLES,
    assert_failures_located,
    fuzz,
    mutated,
    mutated_json,
    translate_or_refuse,
)

OA = EXAMPLES / "oa"
XML = (OA / "设备借用与报修_2024Q2.xml").read_bytes()
JSON_EXPORT = (OA / "工单导出_2024Q2.json").read_bytes()
JSONL = (OA / "工单推送_2024-07-01.jsonl").read_bytes()
XML_ENCODINGS = ("utf-8", "gbk", "gb18030", "utf-16")


def _xml_in(codec: str) -> bytes:
    """The GBK sample re-encoded, its declaration saying so."""
    text = XML.decode("gbk").replace('encoding="GBK"', f'encoding="{codec.upper()}"', 1)
    return text.encode(codec)


XML_SEEDS = st.sampled_from([_xml_in(c) for c in XML_ENCODINGS])


def _translate(case: tuple[str, bytes]) -> None:
    name, data = case
    outcome = translate_or_refuse("oa", data, name)
    if isinstance(outcome, MalformedMessage):
        assert name in str(outcome)
    assert_failures_located(outcome, needs_line=True)


@pytest.mark.parametrize("budget", BUDGETS)
def test_xml_exports_mutated(budget: int) -> None:
    """XML in UTF-8/GBK/GB18030/UTF-16, byte-mutated: records, located failures, or a refusal."""
    fuzz(budget, mutated(XML_SEEDS).map(lambda d: ("fuzz.xml", d)), _translate)


@pytest.mark.parametrize("budget", BUDGETS)
def test_json_exports_byte_mutated(budget: int) -> None:
    fuzz(budget, mutated(st.just(JSON_EXPORT)).map(lambda d: ("fuzz.json", d)), _translate)


@pytest.mark.parametrize("budget", BUDGETS)
def test_json_exports_structurally_mutated(budget: int) -> None:
    """Values replaced by nulls, numbers, nested objects; keys dropped or added."""
    export = json.loads(JSON_EXPORT)
    # Slices of six records each: every record kind appears, and one example costs milliseconds.
    documents = [{**export, "记录": export["记录"][i : i + 6]} for i in range(0, len(export["记录"]), 6)]
    fuzz(budget, mutated_json(documents).map(lambda d: ("fuzz.json", d)), _translate)


@pytest.mark.parametrize("budget", BUDGETS)
def test_json_lines_mutated(budget: int) -> None:
    fuzz(budget, mutated(st.just(JSONL)).map(lambda d: ("fuzz.jsonl", d)), _translate)
