"""ACKs: MSA and ERR content, charset echo, and byte-for-byte agreement with hl7apy."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from hl7apy.core import Message as Hl7apyMessage

from adapters.base import Failure, SourceLocation
from adapters.his.ack import ERROR_CODES, AckError, build_ack, validate_strict
from adapters.his.header import MessageHeader, header
from tests.unit.adapters.test_his_samples import run, sample

NOW = datetime(2024, 6, 12, 10, 15, 30, tzinfo=timezone(timedelta(hours=8)))


def inbound(version: str = "2.5", *, charset: str = "", trigger: str = "P03") -> MessageHeader:
    fields = [
        "MSH",
        "^~\\&",
        "HIS^1.2.3^ISO",
        "XXRMYY",
        "HUB",
        "HUBFAC",
        "20240612101500",
        "",
        f"DFT^{trigger}",
        "C42",
        "P",
        version,
    ]
    if charset:
        fields += ["", "", "", "", "", charset]
    return header(("|".join(fields) + "\rEVN|P03\r").encode())


def segments(ack: bytes, encoding: str = "utf-8") -> list[list[str]]:
    text = ack.decode(encoding)
    assert text.endswith("\r")
    return [s.split("|") for s in text[:-1].split("\r")]


class TestContent:
    def test_aa_swaps_sender_and_receiver_and_echoes_the_control_id(self):
        """AA: MSH-3/4 are the inbound MSH-5/6 and vice versa; MSA-2 is the inbound MSH-10; no ERR."""
        msh, msa = segments(build_ack(inbound(), "AA", now=NOW))
        assert msh[:12] == [
            "MSH", "^~\\&", "HUB", "HUBFAC", "HIS^1.2.3^ISO", "XXRMYY", "20240612101530+0800", "", "ACK^P03^ACK",
            "ACKC42", "P", "2.5",
        ]  # fmt: skip
        assert msa == ["MSA", "AA", "C42"]

    def test_ae_v25_has_err_with_location_code_severity_and_message(self):
        """AE in v2.5: ERR-2 segment^sequence^field, ERR-3 table 0357 code, ERR-4 severity, ERR-8 text."""
        error = AckError("FT1-13: code '9999' unknown", hl7_code="103", segment="FT1", sequence=2, field=13)
        _, msa, err = segments(build_ack(inbound(), "AE", error=error, now=NOW))
        assert msa == ["MSA", "AE", "C42"]
        assert err == [
            "ERR",
            "",
            "FT1^2^13",
            "103^Table value not found^HL70357",
            "E",
            "",
            "",
            "",
            "FT1-13: code '9999' unknown",
        ]

    def test_ar_v23_uses_err1_and_msa3(self):
        """Before v2.5 the location and code go in ERR-1 and the text in MSA-3; MSH-9 has two components."""
        error = AckError("cannot store the message", hl7_code="207")
        msh, msa, err = segments(build_ack(inbound("2.3"), "AR", error=error, now=NOW))
        assert msh[8] == "ACK^P03"
        assert msa == ["MSA", "AR", "C42", "cannot store the message"]
        assert err == ["ERR", "^^^207&Application internal error&HL70357"]

    def test_user_message_is_escaped(self):
        """Delimiters in ERR-8 are escaped so the ACK still parses."""
        error = AckError("a|b^c&d~e\\f")
        *_, err = segments(build_ack(inbound(), "AE", error=error, now=NOW))
        assert err[8] == "a\\F\\b\\S\\c\\T\\d\\R\\e\\E\\f"

    def test_aa_ignores_an_error(self):
        """An AA never carries an ERR segment."""
        assert len(segments(build_ack(inbound(), "AA", error=AckError("x"), now=NOW))) == 2

    def test_charset_is_echoed_and_used(self):
        """A GBK v2.4 message gets its ACK in GBK with MSH-18 `GBK`; Chinese text in MSA-3 survives."""
        gbk = header(sample("02_dft_p03_pacemaker_gbk.hl7"))
        ack = build_ack(gbk, "AE", error=AckError("東區手術室: 未知"), now=NOW)
        msh, msa, _ = segments(ack, "gb18030")
        assert (msh[11], msh[17]) == ("2.4", "GBK")
        assert msa[3] == "東區手術室: 未知"
        assert "東".encode("gbk") in ack

    def test_missing_trigger_and_version(self):
        """Without MSH-9.2 the type is plain ACK; without MSH-12 the ACK says 2.5."""
        h = header(b"MSH|^~\\&|A|B|C|D|20240101||ACK|9|P\r")
        msh, _ = segments(build_ack(h, "AA", now=NOW))
        assert (msh[8], msh[11]) == ("ACK", "2.5")

    def test_naive_time_is_refused(self):
        """An ACK timestamp without zone would be ambiguous: refused."""
        with pytest.raises(ValueError, match="time zone"):
            build_ack(inbound(), "AA", now=datetime(2024, 1, 1))  # noqa: DTZ001

    def test_from_failure_maps_code_and_location(self):
        """A translator Failure becomes ERR content: 0357 code, segment, sequence and field number."""
        failure = Failure(
            position="m2/FT1:3",
            reason="FT1:3: FT1-10: 'x' is not a number",
            code="invalid_number",
            location=SourceLocation(segment="FT1", field="FT1-10", line=7),
        )
        error = AckError.from_failure(failure)
        assert (error.hl7_code, error.segment, error.sequence, error.field) == ("102", "FT1", 3, 10)
        assert error.message == failure.reason

    def test_from_failure_of_a_real_translation(self):
        """The unknown-state sample's failure gives ERR-2 EQU^1^3 and code 103."""
        (failure,) = run(sample("09_esu_u01_unknown_state.hl7")).failures
        h = header(sample("09_esu_u01_unknown_state.hl7"))
        *_, err = segments(build_ack(h, "AE", error=AckError.from_failure(failure), now=NOW))
        assert err[2:5] == ["EQU^1^3", "103^Table value not found^HL70357", "E"]


def hl7apy_ack(h: MessageHeader, code: str, error: AckError | None, now: datetime) -> bytes:
    """The same ACK built node by node with hl7apy, the reference the fast builder must match."""
    seps = h.separators
    # The inbound delimiters are echoed (hl7apy would add the v2.7 truncation character `#`).
    chars = {
        "FIELD": seps.field,
        "COMPONENT": seps.component,
        "REPETITION": seps.repetition,
        "ESCAPE": seps.escape,
        "SUBCOMPONENT": seps.subcomponent,
        "GROUP": "\r",
        "SEGMENT": "\r",
    }
    message = Hl7apyMessage("ACK", version=h.version, encoding_chars=chars)
    msh = message.msh
    msh.msh_3 = h.receiving_application
    msh.msh_4 = h.receiving_facility
    msh.msh_5 = h.sending_application
    msh.msh_6 = h.sending_facility
    msh.msh_7 = now.strftime("%Y%m%d%H%M%S%z")
    msh.msh_9 = (
        f"ACK^{h.trigger_event}^ACK" if h.version not in {"2.3", "2.2", "2.1"} else f"ACK^{h.trigger_event}"
    )
    msh.msh_10 = "ACK" + h.control_id
    msh.msh_11 = h.processing_id
    msh.msh_12 = h.version
    if h.charset:
        msh.msh_18 = h.charset
    message.msa.msa_1 = code
    message.msa.msa_2 = h.control_id
    if error is not None:
        err = message.add_segment("ERR")
        location = f"{error.segment}^{error.sequence}^{error.field}"
        condition = (error.hl7_code, ERROR_CODES[error.hl7_code], "HL70357")
        if h.version in {"2.3", "2.3.1", "2.4"}:
            message.msa.msa_3 = error.message
            err.err_1 = location + "^" + "&".join(condition)
        else:
            err.err_2 = location
            err.err_3 = "^".join(condition)
            err.err_4 = error.severity
            err.err_8 = error.message
    return (message.to_er7() + "\r").encode(h.encoding)


class TestAgreesWithHl7apy:
    # 2.8+ are left out on purpose: hl7apy drops withdrawn fields (ERR-1 in 2.8) from its
    # structures and so writes ERR-2 in position 1; HL7 keeps withdrawn positions empty, as we do.
    @pytest.mark.parametrize("version", ["2.3", "2.3.1", "2.4", "2.5", "2.5.1", "2.6", "2.7"])
    @pytest.mark.parametrize("code", ["AA", "AE", "AR"])
    def test_fast_ack_equals_hl7apy_ack(self, version, code):
        """For each version the template ACK is byte-identical to the one hl7apy builds."""
        h = inbound(version, charset="UNICODE UTF-8")
        error = (
            None
            if code == "AA"
            else AckError("FT1-13 unknown", hl7_code="103", segment="FT1", sequence=1, field=13)
        )
        assert build_ack(h, code, error=error, now=NOW) == hl7apy_ack(h, code, error, NOW)

    def test_v28_keeps_the_withdrawn_err1_position_empty(self):
        """In 2.8 ERR-1 is withdrawn but ERR-2 stays the second field, as the standard numbers it."""
        error = AckError("x", hl7_code="103", segment="FT1", sequence=1, field=13)
        *_, err = segments(build_ack(inbound("2.8"), "AE", error=error, now=NOW))
        assert err[:3] == ["ERR", "", "FT1^1^13"]

    def test_hl7apy_validates_the_fast_ack(self):
        """hl7apy's strict validation finds no error in a v2.5 AE built by the template."""
        ack = build_ack(
            inbound("2.5"),
            "AE",
            error=AckError("x", hl7_code="101", segment="FT1", sequence=1, field=10),
            now=NOW,
        )
        problems = validate_strict(ack.decode())
        assert [p for p in problems if p.startswith("error")] == []


class TestStrictValidation:
    def test_problems_are_listed_without_values(self):
        """validate_strict lists every problem and never quotes a field value."""
        text = "MSH|^~\\&|A|B|C|D|20240101||ADT^A01|1|P|2.5\rPID|1||MR555^^^H^MR||SECRETNAME^X||19700101|Q\r"
        problems = validate_strict(text)
        assert problems
        assert all(p.startswith(("error: ", "warning: ")) for p in problems)
        assert not any("SECRETNAME" in p or "MR555" in p for p in problems)
        assert any("Missing required child ADT_A01.EVN" in p for p in problems)

    def test_unsupported_version_is_reported(self):
        """A version hl7apy does not know is reported as such."""
        (problem,) = validate_strict("MSH|^~\\&|A|B|C|D|20240101||ADT^A01|1|P|2.9\r")
        assert "2.8.2" in problem

    def test_a_wrapped_line_is_reported_without_content(self):
        """A line that is not a segment (hl7apy would skip it silently) is reported by number only."""
        (problem,) = validate_strict("MSH|^~\\&|A|B|C|D|20240101||ADT^A01|1|P|2.5\r4563 SMITH JOHN|x\r")
        assert problem.startswith("error: segment 2 does not start with a segment id")
        assert "SMITH" not in problem
        assert "4563" not in problem
