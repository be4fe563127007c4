"""Decoding HL7 bytes before splitting: channel, BOM, MSH-18, strict UTF-8, GB18030."""

from __future__ import annotations

import codecs

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.errors import MalformedMessage
from adapters.his.decode import charset_codec, declared_charset, decode
from adapters.his.tokenize import escape, tokenise


def msh(charset: str = "", *, facility: str = "FAC") -> str:
    fields = [
        "MSH",
        "^~\\&",
        "APP",
        facility,
        "HUB",
        "HUB",
        "20240612101500",
        "",
        "ADT^A01",
        "C1",
        "P",
        "2.5",
    ]
    if charset:
        fields += ["", "", "", "", "", charset]
    return "|".join(fields)


# Characters whose GBK second byte is one of the HL7 delimiters | ^ ~ \.
TRAIL_DELIMITER_CHARS = "東億瑋縷淺禱礬奮繼璣紐箏"


class TestTrailBytes:
    def test_the_test_characters_really_have_delimiter_trail_bytes(self):
        """Each character used below encodes in GBK with `|`, `^`, `~` or `\\` as its second byte."""
        for char in TRAIL_DELIMITER_CHARS:
            assert char.encode("gbk")[1:] in (b"|", b"^", b"~", b"\\"), char

    def test_gbk_fields_with_delimiter_trail_bytes_split_correctly(self):
        """A GBK message with 東區/億 in fields decodes and splits into the fields that were written."""
        text = (
            msh("GBK") + "\rPID|1||MR1^^^H^MR||李瑋^LI||19580723\rFT1|1|X||||CG|HC1^億通^L||||||^東區手術室\r"
        )
        payload = text.encode("gbk")
        assert b"\x96|" in payload  # 東 is 96 7C: a byte splitter would see a field separator here
        decoded = decode(payload)
        message = tokenise(decoded.text, decoded.encoding)
        assert decoded.encoding == "gb18030"
        assert decoded.how == "msh18"
        assert message.get("PID", 5, 1) == "李瑋"
        assert message.get("PID", 7) == "19580723"
        assert message.get("FT1", 7, 2) == "億通"
        assert message.get("FT1", 13, 2) == "東區手術室"

    @given(
        st.lists(
            st.text(alphabet=TRAIL_DELIMITER_CHARS + "AZ09 -.中文", min_size=0, max_size=12),
            min_size=1,
            max_size=8,
        )
    )
    @settings(max_examples=150, deadline=None)
    def test_any_gbk_field_values_survive_decode_and_split(self, values):
        """Whatever GBK text the fields hold, decoding then splitting returns exactly those values."""
        segment = "ZZZ|" + "|".join(escape(v) for v in values)
        decoded = decode((msh("GBK") + "\r" + segment + "\r").encode("gbk"))
        zzz = tokenise(decoded.text, decoded.encoding).segment("ZZZ")
        assert zzz is not None
        assert [zzz.field(n) for n in range(1, len(values) + 1)] == values


class TestDeclaredCharset:
    @pytest.mark.parametrize(
        ("label", "codec"),
        [
            ("UNICODE UTF-8", "utf-8"),
            ("UTF-8", "utf-8"),
            ("GB 18030-2000", "gb18030"),
            ("GB18030", "gb18030"),
            ("GBK", "gb18030"),
            ("GB2312", "gb18030"),
            ("CHINESE", "gb18030"),
            ("8859/1", "latin-1"),
            ("ASCII", "ascii"),
        ],
    )
    def test_msh18_names_map_to_codecs(self, label, codec):
        """Table 0211 names and the non-standard Chinese labels map to the right codec."""
        payload = (msh(label) + "\rEVN|A01\r").encode("utf-8")
        decoded = decode(payload)
        assert declared_charset(payload) == label
        assert (decoded.encoding, decoded.how) == (codec, "msh18")

    def test_first_repetition_of_msh18_is_the_charset(self):
        """MSH-18 may repeat (ISO 2022 alternates); the first repetition is the message's charset."""
        assert declared_charset((msh("UNICODE UTF-8~GB 18030-2000") + "\r").encode()) == "UNICODE UTF-8"

    def test_gbk_text_before_msh18_does_not_shift_it(self):
        """A GBK facility name whose trail byte is `|` does not move MSH-18 (read GB18030-aware)."""
        payload = (msh("GBK", facility="東區醫院") + "\r").encode("gbk")
        assert payload.count(b"|") > msh("GBK", facility="東區醫院").count("|")
        assert declared_charset(payload) == "GBK"

    def test_latin1_letter_before_a_separator_is_read_bytewise(self):
        """`é|` in Latin-1 would pair up as one GB18030 character; the byte reading wins because it names a charset."""
        payload = (msh("8859/1", facility="Hôpital Genève café") + "\r").encode("latin-1")
        assert b"\xe9|" in payload
        assert declared_charset(payload) == "8859/1"
        assert decode(payload).text.split("|")[3] == "Hôpital Genève café"

    def test_msh18_is_found_after_fhs_and_bhs(self):
        """In a batch file, MSH-18 is read from the first MSH, after the FHS/BHS header lines."""
        payload = ("FHS|^~\\&|A\rBHS|^~\\&|A\r" + msh("GBK") + "\r").encode()
        assert declared_charset(payload) == "GBK"

    def test_no_msh_means_no_declared_charset(self):
        """Without an MSH segment nothing is declared."""
        assert declared_charset(b"PID|1||X\r") is None
        assert declared_charset(b"") is None


class TestFallbackOrder:
    def test_channel_setting_beats_msh18(self):
        """A channel-forced encoding is used even when MSH-18 says something else."""
        payload = (msh("UNICODE UTF-8") + "\rNTE|1||東區\r").encode("gbk")
        text, encoding, how = decode(payload, "gbk")
        assert (encoding, how, declared_charset(payload)) == ("gb18030", "channel", "UNICODE UTF-8")
        assert "東區" in text

    def test_channel_setting_that_does_not_fit_is_refused_with_the_offset(self):
        """Forcing UTF-8 on GBK bytes fails with the byte offset, not with a guess."""
        payload = (msh() + "\rNTE|1||東區\r").encode("gbk")
        with pytest.raises(MalformedMessage, match=r"byte offset \d+"):
            decode(payload, "utf-8")

    def test_unknown_channel_setting_is_refused(self):
        """A channel encoding nobody knows is an error, not silently ignored."""
        with pytest.raises(MalformedMessage, match="not a known character set"):
            decode(b"MSH|^~\\&|A\r", "klingon-8")

    def test_utf8_bom_decides_utf8(self):
        """A UTF-8 BOM means UTF-8 and is removed from the text."""
        decoded = decode(codecs.BOM_UTF8 + (msh() + "\rNTE|1||东区\r").encode())
        assert (decoded.encoding, decoded.how) == ("utf-8", "bom")
        assert decoded.text.startswith("MSH|")

    def test_without_msh18_strict_utf8_comes_first(self):
        """Valid UTF-8 without MSH-18 decodes as UTF-8."""
        decoded = decode((msh() + "\rNTE|1||东区手术室\r").encode())
        assert (decoded.encoding, decoded.how) == ("utf-8", "utf-8")

    def test_without_msh18_non_utf8_falls_back_to_gb18030(self):
        """GBK bytes without MSH-18 are not UTF-8 and decode as GB18030."""
        decoded = decode((msh() + "\rNTE|1||东区手术室\r").encode("gbk"))
        assert (decoded.encoding, decoded.how) == ("gb18030", "gb18030")
        assert "东区手术室" in decoded.text

    def test_a_lying_msh18_falls_through_to_content_rules(self):
        """MSH-18 `ASCII` over GBK bytes: ASCII fails, UTF-8 fails, GB18030 reads it (the label stays in MSH-18)."""
        payload = (msh("ASCII") + "\rNTE|1||东区\r").encode("gbk")
        assert decode(payload)[1:] == ("gb18030", "gb18030")
        assert declared_charset(payload) == "ASCII"

    def test_unknown_msh18_label_is_ignored(self):
        """An MSH-18 value that names no known charset does not stop UTF-8 detection."""
        payload = (msh("UNICODE UTF-16") + "\r").encode()
        assert decode(payload)[1:] == ("utf-8", "utf-8")
        assert declared_charset(payload) == "UNICODE UTF-16"

    def test_bytes_no_rule_can_read_are_malformed(self):
        """Bytes invalid in both UTF-8 and GB18030 raise MalformedMessage naming the offset."""
        with pytest.raises(MalformedMessage, match="byte offset"):
            decode(msh().encode() + b"\r\xff\xff\xff\r")

    @given(st.binary(max_size=300))
    @settings(max_examples=300, deadline=None)
    def test_any_bytes_decode_or_raise_malformed(self, payload):
        """Fuzz: arbitrary bytes either decode or raise MalformedMessage, never anything else."""
        try:
            decoded = decode(payload)
        except MalformedMessage:
            return
        assert isinstance(decoded.text, str)

    @given(st.binary(max_size=200))
    @settings(max_examples=200, deadline=None)
    def test_any_bytes_after_an_msh_prefix_decode_or_raise_malformed(self, tail):
        """Fuzz: an MSH prefix followed by arbitrary bytes never raises anything but MalformedMessage."""
        try:
            decode(b"MSH|^~\\&|" + tail)
        except MalformedMessage:
            return


class TestCharsetCodec:
    @pytest.mark.parametrize("name", ["rot13", "base64", "utf-16", "cp500", "no-such-codec", ""])
    def test_non_ascii_compatible_or_unknown_codecs_are_refused(self, name):
        """Only ASCII-compatible text codecs qualify: delimiters and CR must stay single bytes."""
        assert charset_codec(name) is None

    @pytest.mark.parametrize(("name", "codec"), [("gbk", "gb18030"), ("cp1252", "cp1252"), ("big5", "big5")])
    def test_python_codec_names_are_accepted(self, name, codec):
        """A plain Python codec name works as a channel setting; GBK is widened to GB18030."""
        assert charset_codec(name) == codec


class TestCharsetDoubt:
    """A label the bytes do not fit, or text that reads as nonsense, is named with the likeliest charset."""

    TRADITIONAL = "藥物洗脫冠脈支架一次性使用輸液器中心庫房手術室重症醫學科"

    def _message(self, charset: str, name: str) -> str:
        return msh(charset) + f"\rFT1|1|X||||CG|HC0031^{name}^LOCAL||||||^手術室\r"

    def test_big5_bytes_under_a_gbk_label_are_doubted(self) -> None:
        payload = self._message("GBK", self.TRADITIONAL).encode("big5")
        from adapters.his.decode import charset_doubt

        decoded = decode(payload)
        assert decoded.how == "msh18"  # decoded under the label, as before: into nonsense
        doubt = charset_doubt(payload, decoded)
        assert doubt is not None
        assert "gb18030" in doubt
        assert "kana, box drawing or private-use" in doubt

    def test_a_label_the_bytes_do_not_fit_is_doubted(self) -> None:
        from adapters.his.decode import charset_doubt

        payload = self._message("ASCII", "冠状动脉药物洗脱支架系统").encode("gbk")
        doubt = charset_doubt(payload, decode(payload))
        assert doubt is not None
        assert "MSH-18 says 'ASCII'" in doubt

    @settings(max_examples=50, deadline=None)
    @given(
        name=st.text(alphabet="冠状动脉药物洗脱支架系统一次性使用输液器東區億通", min_size=1, max_size=20),
        label=st.sampled_from(["GBK", "GB 18030-2000", "UNICODE UTF-8", ""]),
    )
    def test_honest_labels_are_not_doubted(self, name: str, label: str) -> None:
        """GBK or UTF-8 text under its own label (or none), traditional names included: no doubt."""
        from adapters.his.decode import charset_doubt

        codec = "utf-8" if label in ("UNICODE UTF-8", "") else "gbk"
        payload = self._message(label, name).encode(codec)
        assert charset_doubt(payload, decode(payload)) is None


def test_the_same_bytes_read_again_under_another_channel_encoding_are_decoded_again() -> None:
    """Decoding is remembered per bytes object (the listener reads a frame's MSH, then translates it):
    the memo never answers for another channel encoding or for a buffer that changed since."""
    payload = "MSH|^~\\&|HIS|医院|HUB||20240601||DFT^P03|M1|P|2.5\r".encode("gb18030")
    first = decode(payload)
    assert decode(payload) == first
    as_latin = decode(payload, "latin-1")
    assert as_latin.how == "channel"
    assert as_latin.text != first.text
    buffer = bytearray(b"MSH|^~\\&|A|B|||||ADT^A01|1|P|2.5\r")
    assert decode(buffer).text.startswith("MSH|^~\\&|A|")  # type: ignore[arg-type]
    buffer[9] = ord("Z")
    assert decode(buffer).text.startswith("MSH|^~\\&|Z|")  # type: ignore[arg-type]
