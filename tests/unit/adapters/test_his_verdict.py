"""What the hub answers is what it does: empty MSH-10, notes, per-message ACKs, charset doubts (pure)."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.his.ack import AckError
from adapters.his.batch import split_messages
from adapters.his.header import header
from adapters.his.verdict import verdict
from tests.unit.adapters.test_his_samples import hl7, mapping, run
from tests.unit.adapters.test_his_translate import PID, msh, with_rules

NOW = datetime(2024, 6, 20, 1, 2, 3, tzinfo=UTC)
FT1 = "FT1|1|C1||20240616093000||CG|HC0301|||1|||0206"
OBX = "OBX|1|ST|X||v||||||F|||20240616090000||||DEV-A"


def segments(ack: bytes, seg: str) -> list[list[str]]:
    return [line.split("|") for line in ack.decode().split("\r") if line.startswith(seg)]


def oru(ward: str, label: str = "", control_id: str = "T1") -> str:
    head = msh("ORU^R01", control_id) + (f"||||||{label}" if label else "")
    return "\r".join((head, PID, f"PV1|1|I|{ward}^^^^^^^^加護病房監護區", OBX)) + "\r"


class TestEmptyControlId:
    def test_mapped_type_is_refused_and_nothing_applied(self) -> None:
        """A DFT^P03 with an empty MSH-10 yields no event and one failure naming MSH-10."""
        result = run(hl7(msh("DFT^P03", ""), PID, FT1), message_id="sha256:1")
        assert result.events == ()
        (failure,) = result.failures
        assert (failure.code, failure.position, failure.location.field) == (
            "missing_control_id",
            "message",
            "MSH-10",
        )

    def test_unmapped_type_is_only_counted(self) -> None:
        """An ADT^A01 with an empty MSH-10 applies nothing anyway: skipped as unmapped, no failure (AA)."""
        result = run(hl7(msh("ADT^A01", ""), PID), message_id="sha256:2")
        assert (result.failures, result.skipped) == ((), ("unmapped message type ADT^A01",))

    def test_answered_ar_naming_msh_10(self) -> None:
        """The refusal is an AR whose ERR points at MSH^1^10 with code 101."""
        payload = hl7(msh("DFT^P03", ""), PID, FT1)
        ack = verdict([header(payload)], run(payload, message_id="sha256:3"), NOW).answer
        assert segments(ack, "MSA")[0] == ["MSA", "AR"]  # MSA-2 echoes the empty MSH-10
        assert segments(ack, "ERR")[0][2:5] == ["MSH^1^10", "101^Required field missing^HL70357", "E"]


class TestNotes:
    def test_err_names_the_segment_and_field_of_the_dead_letter(self) -> None:
        """An OBX unit whose PV1-3 ward is unknown: the note says PV1-3, and so does ERR (PV1^1^3, not OBX^1^3)."""
        payload = oru("WARD-X").encode()
        result = run(payload)
        (note,) = result.notes
        err = AckError.from_failure(note, "W")
        assert (err.segment, err.sequence, err.field) == (note.location.segment, 1, 3) == ("PV1", 1, 3)
        ack = verdict([header(payload)], result, NOW).answer
        assert segments(ack, "MSA")[0][1] == "AA"
        (err_segment,) = segments(ack, "ERR")
        assert (err_segment[2], err_segment[4]) == ("PV1^1^3", "W")

    def test_a_failed_unit_keeps_its_own_segment(self) -> None:
        """A failure in the unit's own segment keeps the unit's sequence: FT1 2, field 10 -> FT1^2^10."""
        payload = hl7(msh("DFT^P03"), PID, FT1, "FT1|2|C2||20240616093000||CG|HC0302|||abc|||0206")
        (failure,) = run(payload).failures
        err = AckError.from_failure(failure)
        assert (err.segment, err.sequence, err.field) == ("FT1", 2, 10)
        ack = verdict([header(payload)], run(payload), NOW).answer
        assert segments(ack, "MSA")[0][1] == "AE"


class TestPerMessage:
    def test_thirteen_messages_get_thirteen_acks_in_order(self) -> None:
        """A batch of 13 messages is answered per MSH-10, in order, as a batch; one bad message alone is AE."""
        messages = [hl7(msh("DFT^P03", f"C{n:02}"), PID, FT1).decode() for n in range(1, 14)]
        messages[6] = messages[6].replace("|||1|||0206", "|||x|||0206")
        payload = ("FHS|^~\\&|HIS\rBHS|^~\\&|HIS\r" + "".join(messages) + "BTS|13\rFTS|1\r").encode()
        heads = [header(m) for m in split_messages(payload)]
        result = run(payload)
        answered = verdict(heads, result, NOW, batch=True)
        assert answered.codes == ("AA",) * 6 + ("AE",) + ("AA",) * 6
        msas = segments(answered.answer, "MSA")
        assert [m[2] for m in msas] == [f"C{n:02}" for n in range(1, 14)]
        assert segments(answered.answer, "BTS") == [["BTS", "13"]]
        assert len(segments(answered.answer, "MSH")) == 13


class TestCharset:
    def test_big5_labelled_utf8_is_refused_naming_the_likeliest_charset(self) -> None:
        """Big5 bytes under MSH-18 UNICODE UTF-8 are not stored as mojibake: a whole-message failure with the likeliest charset."""
        result = run(oru("ICU-A", "UNICODE UTF-8").encode("big5"))
        assert result.events == ()
        (failure,) = result.failures
        assert (failure.code, failure.location.field) == ("charset_mojibake", "MSH-18")
        assert "likeliest charset: big5" in failure.reason

    def test_big5_labelled_gb18030_is_refused(self) -> None:
        """A GB18030 label on Big5 bytes decodes, but into kana and private-use characters: refused."""
        (failure,) = run(oru("ICU-A", "GB18030").encode("big5")).failures
        assert failure.code == "charset_mojibake"

    def test_warn_rule_applies_with_a_note(self) -> None:
        """`charset_doubt: warn`: the message is applied and the doubt is a note (AA with a warning)."""
        payload = oru("ICU-A", "UNICODE UTF-8").encode("big5")
        result = run(payload, mapping(with_rules(charset_doubt="warn")))
        assert result.failures == ()
        assert len(result.events) == 1
        assert [n.code for n in result.notes] == ["charset_mojibake"]
        ack = verdict([header(payload)], result, NOW).answer
        assert segments(ack, "MSA")[0][1] == "AA"

    def test_gbk_under_a_utf8_label_is_read_right_and_noted(self) -> None:
        """GBK bytes labelled UTF-8 read as plausible GB18030 text: applied, the wrong label noted."""
        result = run(oru("ICU-A", "UNICODE UTF-8").encode("gb18030"))
        assert result.failures == ()
        assert [n.code for n in result.notes] == ["charset_mislabelled"]

    def test_a_fitting_label_raises_no_doubt(self) -> None:
        """GB18030 bytes labelled GB18030 and UTF-8 labelled UTF-8: no note, no failure."""
        for label, codec in (("GB18030", "gb18030"), ("UNICODE UTF-8", "utf-8")):
            result = run(oru("ICU-A", label).encode(codec))
            assert (result.failures, result.notes) == ((), ())


KINDS = {
    "good": ("DFT^P03", FT1, "AA"),
    "bad": ("DFT^P03", FT1.replace("|||1|||", "|||x|||"), "AE"),
    "no_id": ("DFT^P03", FT1, "AR"),
    "unmapped": ("ADT^A08", "PV1|1|I|ICU-A", "AA"),
}


class TestPerMessageProperty:
    @settings(max_examples=30, deadline=None)
    @given(kinds=st.lists(st.sampled_from(sorted(KINDS)), min_size=2, max_size=15), batch=st.booleans())
    def test_each_message_is_answered_by_what_happened_to_it(self, kinds: list[str], batch: bool) -> None:
        """Any mix of good, failing, id-less and unmapped messages: one ACK each, in order, by its own outcome; refused ones emit nothing."""
        texts = []
        for n, kind in enumerate(kinds, 1):
            message_type, body, _ = KINDS[kind]
            cid = "" if kind == "no_id" else f"P{n}"
            texts.append(hl7(msh(message_type, cid), PID, body).decode())
        joined = "".join(texts)
        payload = (f"BHS|^~\\&|HIS\r{joined}BTS|{len(texts)}\r" if batch else joined).encode()
        heads = [header(m) for m in split_messages(payload)]
        result = run(payload, message_id="batch")
        answered = verdict(heads, result, NOW, batch=batch)
        assert answered.codes == tuple(KINDS[k][2] for k in kinds)
        msas = segments(answered.answer, "MSA")
        assert [m[2] if len(m) > 2 else "" for m in msas] == [
            "" if k == "no_id" else f"P{n}" for n, k in enumerate(kinds, 1)
        ]
        emitted = {e.position.split("/")[0] for e in result.events}
        assert emitted == {f"m{n}" for n, k in enumerate(kinds, 1) if k == "good"}
