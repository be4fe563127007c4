"""Decoding export bytes: BOM, strict UTF-8, the GB family, forced encodings, precise errors."""

from __future__ import annotations

import codecs

import pytest
from hypothesis import given
from hypothesis import strategies as st

from adapters._files.encoding import decode_export
from adapters.errors import MalformedMessage

# Characters whose GBK trail byte is 0x7C ('|') or 0x5C ('\'): byte-level splitting breaks them.
TRAIL_PIPE = "亅億"
EXT_B = "𠀀"  # CJK Extension B: four bytes in GB18030, absent from GBK


class TestDecodeExport:
    def test_plain_utf8_is_utf8(self) -> None:
        """Bytes that decode as strict UTF-8 are reported as utf-8."""
        decoded = decode_export("资产编号,原值\n".encode(), filename="a.csv")
        assert decoded.encoding == "utf-8"
        assert decoded.text == "资产编号,原值\n"

    def test_bom_wins_and_is_removed(self) -> None:
        """A UTF-8 BOM selects utf-8-sig and does not leak into the first header cell."""
        decoded = decode_export(codecs.BOM_UTF8 + "资产编号".encode(), filename="a.csv")
        assert decoded.encoding == "utf-8-sig"
        assert decoded.text == "资产编号"

    def test_utf16_bom_is_read(self) -> None:
        """Excel's "Unicode text" export (UTF-16 with BOM) decodes."""
        decoded = decode_export("资产编号\t原值".encode("utf-16"), filename="a.txt")
        assert decoded.text == "资产编号\t原值"

    def test_gbk_is_read_as_gb18030(self) -> None:
        """GBK bytes (not valid UTF-8) decode through GB18030, its superset, and say so."""
        decoded = decode_export(f"设备名称|{TRAIL_PIPE}".encode("gbk"), filename="a.csv")
        assert decoded.encoding == "gb18030"
        assert decoded.text == f"设备名称|{TRAIL_PIPE}"

    def test_liantong_is_not_mistaken_for_utf8(self) -> None:
        """联通 in GBK looks like UTF-8 to naive detectors; strict decoding rejects it."""
        decoded = decode_export("联通".encode("gbk"), filename="a.csv")
        assert (decoded.encoding, decoded.text) == ("gb18030", "联通")

    def test_gb18030_only_characters_decode(self) -> None:
        """A four-byte GB18030 character (not in GBK) decodes in auto mode."""
        decoded = decode_export(f"刘{EXT_B}䶮".encode("gb18030"), filename="a.csv")
        assert decoded.text == f"刘{EXT_B}䶮"

    def test_forced_gbk_refuses_gb18030_only_bytes_naming_offset(self) -> None:
        """A mapping that forces gbk fails on a GB18030-only character, naming file and offset."""
        data = "资产".encode("gb18030") + EXT_B.encode("gb18030")
        with pytest.raises(MalformedMessage, match=r"a\.csv: does not decode as gbk at byte offset 4"):
            decode_export(data, filename="a.csv", encoding="gbk")

    def test_forced_utf8_still_drops_bom(self) -> None:
        """Forcing utf-8 reads a BOM-prefixed file without the BOM."""
        decoded = decode_export(codecs.BOM_UTF8 + b"abc", filename="a.csv", encoding="utf-8")
        assert decoded.text == "abc"

    def test_undecodable_bytes_name_file_and_offset(self) -> None:
        """Bytes that are neither UTF-8 nor GB18030 raise MalformedMessage with the byte offset."""
        with pytest.raises(MalformedMessage, match=r"x\.csv: not UTF-8, GBK or GB18030 \(byte offset 3"):
            decode_export(b"abc\xff\xfe\xfd", filename="x.csv")

    @given(st.text(alphabet=st.characters(codec="utf-8", blacklist_characters="\x00")))
    def test_utf8_text_round_trips(self, text: str) -> None:
        """Any UTF-8 encoded text (without NUL: zero bytes are how UTF-16 is told) decodes back to itself."""
        assert decode_export(text.encode(), filename="p.csv").text == text

    @given(st.text(alphabet=st.characters(codec="gb18030")))
    def test_gb18030_decoding_is_faithful_when_chosen(self, text: str) -> None:
        """When GB18030 is chosen the text is exactly what was encoded (UTF-8 wins ties by design);
        random characters may also be refused as implausible, never silently mis-decoded."""
        try:
            decoded = decode_export(text.encode("gb18030"), filename="p.csv")
        except MalformedMessage as exc:
            assert "implausibly" in str(exc)  # noqa: PT017 - refused or faithful, either is fine
            return
        if decoded.encoding == "gb18030":
            assert decoded.text == text
        else:
            assert decoded.encoding == "utf-8"
