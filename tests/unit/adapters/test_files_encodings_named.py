"""Encodings named: Big5, Big5-HKSCS and UTF-16 are accepted in mappings; a file that decodes
implausibly under every encoding `auto` allows is refused naming the encodings tried and the
likeliest one; GBK, GB18030, UTF-8 and UTF-16 (with or without BOM) still decode exactly.
"""

from __future__ import annotations

import codecs
from pathlib import Path

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from adapters._files.encoding import decode_export
from adapters.errors import MalformedMessage
from adapters.spd.mapping import load_spd_mapping
from adapters.spd.translate import translate
from tests.unit.adapters._spd import context, raw_record

SIMPLIFIED = ["物资编码", "药物洗脱冠脉支架", "一次性使用输液器", "中心库房", "手术室", "重症医学科",
              "静脉留置针", "规格型号", "华东医疗供应链有限公司", "过期", "包装破损", "盘点"]  # fmt: skip
TRADITIONAL = ["物資編碼", "藥物洗脫冠脈支架", "一次性使用輸液器", "中心庫房", "手術室", "重症醫學科",
               "靜脈留置針", "規格型號", "華東醫療供應鏈有限公司", "過期", "包裝破損", "盤點"]  # fmt: skip
HKSCS = ["嘅", "啲", "咗", "㗎"]  # in Big5-HKSCS, not in Big5
HEADER_TC = "物資編碼,物資名稱,規格型號,數量,單價,庫房,入庫日期"
ASCII = st.text(alphabet="ABCDEFGHJKLMNPQRSTUVWXYZ0123456789-.*", max_size=8)


def _rows(words: list[str]) -> st.SearchStrategy[str]:
    cell = st.one_of(st.sampled_from(words), ASCII)
    row = st.lists(cell, min_size=3, max_size=7).map(",".join)
    return st.lists(row, min_size=1, max_size=8).map(lambda rows: "\r\n".join(rows) + "\r\n")


class TestAutoStillReadsWhatItDid:
    @settings(max_examples=80, deadline=None)
    @given(
        body=_rows(SIMPLIFIED),
        codec=st.sampled_from(["gbk", "gb18030", "utf-8", "utf-8-sig", "utf-16", "utf-16-le", "utf-16-be"]),
    )
    @example(
        body="一次性使用输液器,一次性使用输液器,一次性使用输液器\r\n", codec="utf-16-le"
    )  # zeros on both sides
    def test_simplified_exports_decode_exactly(self, body: str, codec: str) -> None:
        """GBK, GB18030, UTF-8 with or without BOM, UTF-16 with BOM or without: the text comes back."""
        text = "物资编码,物资名称,规格型号,数量\r\n" + body
        assert decode_export(text.encode(codec), filename="a.csv").text == text


class TestBig5:
    @settings(max_examples=60, deadline=None)
    @given(body=_rows(TRADITIONAL), codec=st.sampled_from(["big5", "big5hkscs"]))
    def test_auto_refuses_big5_naming_what_it_tried(self, body: str, codec: str) -> None:
        """Big5 bytes decode as GB18030 into nonsense: refused, with the encodings tried and the likeliest."""
        data = f"{HEADER_TC}\r\n{body}".encode(codec)
        with pytest.raises(MalformedMessage) as caught:
            decode_export(data, filename="b.csv")
        message = str(caught.value)
        assert "b.csv" in message
        assert "tried utf-8" in message
        assert "gb18030" in message
        assert "likeliest encoding" in message

    @settings(max_examples=60, deadline=None)
    @given(body=_rows(TRADITIONAL + HKSCS), codec=st.sampled_from(["big5-hkscs", "Big5HKSCS", "BIG5_HKSCS"]))
    def test_big5_hkscs_named_decodes_exactly(self, body: str, codec: str) -> None:
        text = f"{HEADER_TC}\r\n{body}"
        assert decode_export(text.encode("big5hkscs"), filename="b.csv", encoding="big5-hkscs").text == text

    @given(body=_rows(TRADITIONAL))
    def test_big5_named_decodes_exactly(self, body: str) -> None:
        text = f"{HEADER_TC}\r\n{body}"
        assert decode_export(text.encode("big5"), filename="b.csv", encoding="big5").text == text

    def test_the_likeliest_is_big5_for_a_real_sized_file(self) -> None:
        rows = "\r\n".join(
            f"GZ0100{i},{TRADITIONAL[i]},3.0*18mm,{i + 1},705,中心庫房,2024-06-0{i % 9 + 1}"
            for i in range(12)
        )
        with pytest.raises(MalformedMessage, match=r"likeliest encoding: (big5|cp950)"):
            decode_export(f"{HEADER_TC}\r\n{rows}".encode("big5"), filename="b.csv")

    def test_big5_read_as_named_gbk_is_refused(self) -> None:
        """Naming the wrong encoding does not store mojibake either."""
        data = f"{HEADER_TC}\r\n{','.join(TRADITIONAL)}".encode("big5")
        with pytest.raises(MalformedMessage, match=r"gbk"):
            decode_export(data, filename="b.csv", encoding="gbk")

    def test_traditional_characters_in_a_gbk_export_are_not_refused(self) -> None:
        """A GBK export naming a Hong Kong supplier in traditional characters is still read."""
        text = "物资编码,物资名称,供应商\r\nGZ01004,药物洗脱冠脉支架,香港醫療器械有限公司\r\n"
        assert decode_export(text.encode("gbk"), filename="a.csv").text == text


class TestUtf16:
    @given(body=_rows(SIMPLIFIED + TRADITIONAL), codec=st.sampled_from(["utf-16", "utf-16-le", "utf-16-be"]))
    def test_named_utf16_decodes_exactly(self, body: str, codec: str) -> None:
        data = body.encode(codec)
        assert decode_export(data, filename="u.txt", encoding=codec).text == body

    def test_utf16_read_as_utf8_is_refused_when_named_wrong(self) -> None:
        data = "item_code,quantity\r\nGZ01004,1\r\nGZ01005,2\r\n".encode("utf-16-le")
        with pytest.raises(MalformedMessage, match=r"control characters"):
            decode_export(codecs.BOM_UTF8 + data, filename="u.csv", encoding="utf-8")


def _site(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "site.yaml"
    path.write_text(text, encoding="utf-8")
    return path


class TestMappings:
    @pytest.mark.parametrize(
        ("written", "kept"),
        [("big5", "big5"), ("Big5-HKSCS", "big5-hkscs"), ("big5hkscs", "big5-hkscs"), ("UTF-16", "utf-16"),
         ("utf_16_le", "utf-16-le"), ("GBK", "gbk"), ("cp936", "gbk"), ("auto", "auto")],
    )  # fmt: skip
    def test_encodings_accepted(self, tmp_path: Path, written: str, kept: str) -> None:
        mapping = load_spd_mapping(_site(tmp_path, f"extends: default\nencoding: {written}\n"))
        assert mapping.encoding == kept

    def test_an_unknown_encoding_is_refused(self, tmp_path: Path) -> None:
        with pytest.raises(Exception, match="encoding"):
            load_spd_mapping(_site(tmp_path, "extends: default\nencoding: latin-1\n"))

    def test_a_big5_spd_export_is_read_through_its_mapping(self, tmp_path: Path) -> None:
        """End to end: a Big5 receipt export with traditional headers, `encoding: big5` in the mapping."""
        mapping = load_spd_mapping(
            _site(
                tmp_path,
                "extends: default\nencoding: big5\ncolumns:\n  item_code: [物資編碼]\n  name: [物資名稱]\n"
                "  quantity: [數量]\n  received_on: [入庫日期]\n",
            )
        )
        data = "物資編碼,物資名稱,數量,入庫日期\r\nGZ01004,藥物洗脫冠脈支架,2,2024-06-01\r\n".encode("big5")
        result = translate(raw_record("入庫.csv"), data, mapping, context(mapping))
        assert not result.failures
        (emitted,) = result.events
        assert emitted.event.payload.item_name == "藥物洗脫冠脈支架"  # type: ignore[attr-defined]
        default = load_spd_mapping(_site(tmp_path, "extends: default\n"))
        with pytest.raises(MalformedMessage, match=r"implausibly.*likeliest encoding"):
            translate(raw_record("入庫.csv"), data, default, context(default))
