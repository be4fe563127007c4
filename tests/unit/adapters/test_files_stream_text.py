"""A CSV export's text decoded as it is read (never held whole): the same codec, lines and errors
as decoding the bytes whole."""

from __future__ import annotations

import codecs
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from adapters._files import encoding
from adapters._files.encoding import decode_export, export_codec, text_lines
from adapters._files.tabular import read_grid
from adapters.errors import MalformedMessage

_LINE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+")


def whole_lines(text: str) -> list[str]:
    return [m.group(0) for m in _LINE.finditer(text)]


@pytest.fixture
def tiny_pieces(monkeypatch: pytest.MonkeyPatch) -> None:
    """Candidates are tried 3 bytes at a time: every multi-byte character straddles a piece."""
    monkeypatch.setattr(encoding, "_PIECE", 3)


@pytest.mark.usefixtures("tiny_pieces")
@pytest.mark.parametrize("codec", ["utf-8", "gb18030", "utf-16"])
def test_characters_split_between_pieces_still_decode(codec: str) -> None:
    text = "资产编号,原值,𠀀\r\n甲,1\n乙,2\r" * 5
    data = text.encode(codec)
    expected = {"utf-16": "utf-16", "utf-8": "utf-8"}.get(codec, "gb18030")
    assert export_codec(data, filename="a.csv") == expected
    assert "".join(text_lines(data, expected)) == text


@pytest.mark.usefixtures("tiny_pieces")
def test_an_undecodable_byte_past_the_first_piece_is_named_at_its_offset() -> None:
    data = "资产编号,原值\n".encode("gbk") * 3 + b"\x81\x20"
    with pytest.raises(MalformedMessage, match=f"gb18030: byte offset {len(data) - 2}: 81 20"):
        export_codec(data, filename="x.csv")
    with pytest.raises(MalformedMessage, match=f"does not decode as gbk at byte offset {len(data) - 2}"):
        export_codec(data, filename="x.csv", encoding="gbk")


def test_a_cr_lf_across_the_reader_buffer_stays_one_line_ending() -> None:
    """TextIOWrapper reads 8 kB at a time: a CR at the end of one read and its LF at the start of
    the next are one line ending, as in the whole text."""
    for pad in range(8185, 8195):
        text = "a" * pad + "\r\n" + "b,c\r" + "d\n" + "e"
        assert list(text_lines(text.encode(), "utf-8")) == whole_lines(text)


@given(st.text(alphabet=st.sampled_from('ab,资\r\n"'), max_size=300))
def test_lines_are_those_of_the_whole_text(text: str) -> None:
    assert list(text_lines(text.encode("gb18030"), "gb18030")) == whole_lines(text)


def test_a_bom_is_not_part_of_the_first_line() -> None:
    data = codecs.BOM_UTF8 + "资产编号,原值\n1,2\n".encode()
    codec = export_codec(data, filename="a.csv")
    assert codec == "utf-8-sig"
    assert next(text_lines(data, codec)) == "资产编号,原值\n"
    assert decode_export(data, filename="a.csv").text == "资产编号,原值\n1,2\n"


def test_a_gbk_export_reads_as_before() -> None:
    text = 'XX医院固定资产台账\r\n卡片编号;资产名称\r\nZC-1;监护仪\r\nZC-2;"呼吸机\r\n备用"\r\n'
    grid = read_grid(text.encode("gbk"), filename="l.csv")
    assert (grid.encoding, grid.delimiter) == ("gb18030", ";")
    assert grid.rows == (
        (1, ("XX医院固定资产台账",)),
        (2, ("卡片编号", "资产名称")),
        (3, ("ZC-1", "监护仪")),
        (4, ("ZC-2", "呼吸机\r\n备用")),
    )
