"""The fast HL7 tokeniser: numbering, lazy access, escapes, separators, batches."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.errors import MalformedMessage
from adapters.his.batch import split_messages, split_text
from adapters.his.tokenize import (
    DEFAULT_SEPARATORS,
    Separators,
    escape,
    field,
    read_separators,
    segment_lines,
    tokenise,
    unescape,
)

MSH = "MSH|^~\\&|APP|FAC|HUB|HUB|20240612101500||DFT^P03^DFT_P03|C1|P|2.5"


def message(*segments: str) -> str:
    return "\r".join([MSH, *segments]) + "\r"


class TestNumbering:
    def test_msh1_is_the_field_separator_and_msh2_the_encoding_characters(self):
        """HL7 counts MSH-1 as the field separator itself, so MSH-3 is the first field after MSH-2."""
        msh = tokenise(message()).segment_list[0]
        assert msh.field(1) == "|"
        assert msh.field(2) == "^~\\&"
        assert msh.field(3) == "APP"
        assert msh.field(9, 2) == "P03"
        assert msh.field(10) == "C1"
        assert msh.field(12) == "2.5"

    def test_other_segments_count_from_the_first_field_after_the_id(self):
        """PID-3 is the third field after `PID|`."""
        pid = tokenise(message("PID|1|EXT|MR1^^^HOSP^MR")).segment("PID")
        assert pid is not None
        assert (pid.field(1), pid.field(2), pid.field(3, 1), pid.field(3, 4), pid.field(3, 5)) == (
            "1",
            "EXT",
            "MR1",
            "HOSP",
            "MR",
        )

    def test_repetitions_components_and_subcomponents(self):
        """Repetitions are 0-based; components and subcomponents 1-based; absent parts are empty."""
        seg = tokenise(message("ZZZ|a1^a2&s2&s3^a3~b1^b2")).segment("ZZZ")
        assert seg is not None
        assert seg.repetitions(1) == 2
        assert seg.field(1, 2) == "a2&s2&s3"
        assert seg.field(1, 2, 0, 3) == "s3"
        assert seg.field(1, 1, 1) == "b1"
        assert seg.field(1, 3, 1) == ""
        assert seg.field(1, 2, 2) == ""
        assert seg.field(1, 1, 0, 2) == ""
        assert seg.field(9) == ""
        assert seg.repetitions(9) == 0

    def test_field_numbers_below_one_are_refused(self):
        """Field 0 and component 0 are programming errors, not empty values."""
        seg = tokenise(message("ZZZ|a")).segment("ZZZ")
        assert seg is not None
        with pytest.raises(ValueError, match="count from 1"):
            seg.field(0)
        with pytest.raises(ValueError, match="count from 1"):
            seg.field(1, 0)

    def test_message_get_and_segment_occurrences(self):
        """`get` reads the n-th occurrence of a segment; a missing segment reads as empty."""
        msg = tokenise(message("FT1|1|A", "FT1|2|B"))
        assert [s.field(2) for s in msg.segments("FT1")] == ["A", "B"]
        assert msg.get("FT1", 2, occurrence=2) == "B"
        assert msg.get("FT1", 2, occurrence=3) == ""
        assert msg.get("PV1", 3) == ""
        assert msg.segment("PV1") is None
        assert [s.number for s in msg.segments()] == [1, 2, 3]

    def test_module_level_field_function(self):
        """`field(seg, n, component, repetition)` is the same as the method."""
        seg = tokenise(message("ZZZ|x^y~z")).segment("ZZZ")
        assert seg is not None
        assert field(seg, 1, 2) == "y"
        assert field(seg, 1, 1, 1) == "z"

    def test_repr_never_shows_content(self):
        """A segment's repr names it, never its (possibly clinical) content."""
        msg = tokenise(message("PID|1||SECRET-MRN"))
        assert "SECRET" not in repr(msg.segment("PID"))
        assert "SECRET" not in repr(msg)


class TestLineEnds:
    @pytest.mark.parametrize("end", ["\r", "\n", "\r\n"])
    def test_cr_lf_and_crlf_all_end_segments(self, end):
        """Segments split the same whatever line end the sender used; blank lines are dropped."""
        text = end.join([MSH, "EVN|P03", "", "PID|1"]) + end + end
        assert [s.id for s in tokenise(text).segments()] == ["MSH", "EVN", "PID"]

    def test_segment_lines_drops_whitespace_only_lines(self):
        """A line of spaces between segments is not a segment."""
        assert segment_lines("MSH|x\r   \rPID|1\r") == ["MSH|x", "PID|1"]


class TestEscapes:
    def test_delimiter_escapes_are_undone_on_access_only(self):
        """`\\T\\` reads as `&` through field(); raw() keeps the escape as sent."""
        seg = tokenise(message("ITM|X|A\\T\\B \\F\\ \\S\\ \\R\\ \\E\\")).segment("ITM")
        assert seg is not None
        assert seg.field(2) == "A&B | ^ ~ \\"
        assert seg.raw(2) == "A\\T\\B \\F\\ \\S\\ \\R\\ \\E\\"

    def test_hex_escape_is_decoded_in_the_message_charset(self):
        """`\\XB6AB\\` is the GBK bytes of 东 when the message is GB18030; `\\X0D\\` is a CR."""
        seg = tokenise(message("NTE|1||\\XB6AB\\区\\X0D\\x"), "gb18030").segment("NTE")
        assert seg is not None
        assert seg.field(3) == "东区\rx"

    def test_unknown_and_formatting_escapes_stay_verbatim(self):
        """`\\.br\\`, `\\H\\` and a lone escape character are kept as they are."""
        assert unescape("a\\.br\\b\\H\\c") == "a\\.br\\b\\H\\c"
        assert unescape("C:\\dir") == "C:\\dir"
        assert unescape("\\XZZ\\") == "\\XZZ\\"

    def test_truncation_escape_in_v27(self):
        """With a fifth encoding character (v2.7+ truncation), `\\P\\` reads as it."""
        seps = read_separators("MSH|^~\\&#|A")
        assert seps.truncation == "#"
        assert unescape("a\\P\\b", seps) == "a#b"
        assert escape("a#b", seps) == "a\\P\\b"

    @given(st.text(max_size=60))
    @settings(max_examples=300)
    def test_unescape_inverts_escape(self, text):
        """Any text survives escape then unescape unchanged (default delimiters)."""
        assert unescape(escape(text)) == text

    @given(
        st.text(max_size=40),
        st.permutations(["|", "^", "~", "\\", "&", "#", "!", "$"]),
    )
    @settings(max_examples=200)
    def test_unescape_inverts_escape_for_any_delimiters(self, text, chars):
        """The round trip holds for any distinct delimiter set, including a truncation character."""
        seps = Separators(*chars[:6])
        assert unescape(escape(text, seps), seps) == text

    @given(st.lists(st.text(max_size=15), min_size=1, max_size=6))
    @settings(max_examples=200)
    def test_escaped_values_read_back_through_a_message(self, values):
        """Values escaped into fields come back exactly from tokenise + field()."""
        seg = tokenise(message("ZZZ|" + "|".join(escape(v) for v in values))).segment("ZZZ")
        assert seg is not None
        assert [seg.field(n) for n in range(1, len(values) + 1)] == values


PLAIN = st.text(alphabet="abcXYZ0189 .-_", max_size=6)


class TestAgainstReferenceSplit:
    @given(
        st.lists(
            st.lists(
                st.lists(st.lists(PLAIN, min_size=1, max_size=3), min_size=1, max_size=3),
                min_size=1,
                max_size=2,
            ),
            min_size=1,
            max_size=5,
        )
    )
    @settings(max_examples=200)
    def test_field_access_equals_nested_split(self, grid):
        """On delimiter-free values, field(n, c, r, s) equals a plain nested str.split of the text."""
        text = "|".join("~".join("^".join("&".join(subs) for subs in rep) for rep in fld) for fld in grid)
        seg = tokenise(message("ZZZ|" + text)).segment("ZZZ")
        assert seg is not None
        ref_fields = ("ZZZ|" + text).split("|")
        for n in range(1, len(grid) + 1):
            for r, rep_text in enumerate(ref_fields[n].split("~")):
                for c, comp_text in enumerate(rep_text.split("^"), 1):
                    assert seg.field(n, c, r) == comp_text
                    for s, sub_text in enumerate(comp_text.split("&"), 1):
                        assert seg.field(n, c, r, s) == sub_text


class TestSeparators:
    def test_default_separators_read(self):
        """`|^~\\&` are the usual delimiters."""
        assert read_separators(MSH) == DEFAULT_SEPARATORS

    def test_non_standard_delimiters_are_honoured(self):
        """A sender may pick other delimiters; fields then split on those."""
        msg = tokenise("MSH#!@$%#APP#FAC\rPID#1##A!B@C")
        assert msg.get("PID", 3, 2) == "B"
        assert msg.get("PID", 3, 1, 1) == "C"

    @pytest.mark.parametrize(
        ("msh", "reason"),
        [
            ("MSH|^~\\\\&|A", "twice; each must differ"),
            ("MSH|^~|A", "4 encoding characters"),
            ("MSH|^~\\&AB|A", "4 encoding characters"),
            ("MSH|^~\\A|B", "must not be letters"),
            ("MSH|", "too short"),
        ],
    )
    def test_unusable_delimiters_are_malformed(self, msh, reason):
        """Repeated, missing or alphanumeric delimiters raise MalformedMessage saying which."""
        with pytest.raises(MalformedMessage, match=reason):
            tokenise(msh + "\rPID|1")


class TestStructure:
    def test_a_message_must_start_with_msh(self):
        """Text whose first segment is not MSH is not a message."""
        with pytest.raises(MalformedMessage, match="does not start with an MSH"):
            tokenise("PID|1||X\r")

    def test_a_line_break_inside_a_field_is_malformed_without_quoting_it(self):
        """A wrapped line starts a 'segment' with no id; the reason names its number, not its text."""
        with pytest.raises(MalformedMessage, match="segment 3 does not start with a segment id") as info:
            tokenise(message("OBX|1|TX|||SMITH JOHN wrapped", "onto the next line|x"))
        assert "SMITH" not in str(info.value)
        assert "onto" not in str(info.value)

    def test_lenient_mode_keeps_malformed_lines_for_later_checks(self):
        """`strict=False` tokenises anyway; check_segments raises when asked."""
        msg = tokenise(message("bad line"), strict=False)
        with pytest.raises(MalformedMessage):
            msg.check_segments()

    def test_a_second_msh_is_refused(self):
        """Two messages in one tokenise call are an error pointing at split_messages."""
        with pytest.raises(MalformedMessage, match="split_messages"):
            tokenise(message("EVN|P03", MSH, "EVN|P03"))


class TestBatches:
    def test_fhs_bhs_envelope_is_dropped_and_messages_kept(self):
        """A batch file yields its messages as exact bytes; FHS/BHS/BTS/FTS are dropped."""
        payload = b"FHS|^~\\&|A\rBHS|^~\\&|A\rMSH|^~\\&|1\rPID|1\rMSH|^~\\&|2\rPID|2\rBTS|2\rFTS|1\r"
        assert split_messages(payload) == [b"MSH|^~\\&|1\rPID|1", b"MSH|^~\\&|2\rPID|2"]

    def test_concatenated_messages_with_blank_lines_split(self):
        """Messages one after another, separated by blank lines, split into each message."""
        payload = b"MSH|^~\\&|1\nPID|1\n\nMSH|^~\\&|2\nPID|2\n"
        assert split_messages(payload) == [b"MSH|^~\\&|1\nPID|1", b"MSH|^~\\&|2\nPID|2"]

    def test_msh_inside_a_field_does_not_split(self):
        """`MSH` in the middle of a line is content, not a message start."""
        payload = b"MSH|^~\\&|1\rNTE|1||see MSH|x\r"
        assert split_messages(payload) == [b"MSH|^~\\&|1\rNTE|1||see MSH|x"]

    def test_gbk_bytes_split_safely(self):
        """Cutting at line starts never cuts a GBK character (CR/LF never occur inside one)."""
        payload = "MSH|^~\\&|東\rNTE|1||區\rMSH|^~\\&|瑋\r".encode("gbk")
        parts = split_messages(payload)
        assert [p.decode("gbk") for p in parts] == ["MSH|^~\\&|東\rNTE|1||區", "MSH|^~\\&|瑋"]

    def test_no_msh_means_no_messages(self):
        """A payload without MSH yields nothing (the caller reports it)."""
        assert split_messages(b"PID|1\r") == []

    def test_split_text_matches_split_messages(self):
        """The text splitter cuts where the byte splitter does."""
        text = "FHS|^~\\&\rMSH|^~\\&|1\rPID|1\rMSH|^~\\&|2\r"
        assert split_text(text) == [m.decode() for m in split_messages(text.encode())]
