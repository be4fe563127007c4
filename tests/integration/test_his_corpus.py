"""Every real-world HL7 v2 message in ../shared/corpus/hl7v2 is translated or rejected with a clear reason.

The table below states, per file, what the adapter does with it: the header it reads (for dedupe
and the ACK), the charset it decides, and the translation outcome: events, skipped units with
their reasons, or MalformedMessage with its reason. A new corpus file fails the suite until it
has a row here. The same files then go through the MLLP listener, which must answer or close
each connection and keep serving.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pytest

from adapters.errors import MalformedMessage
from adapters.his.ack import AckError, build_ack
from adapters.his.batch import split_messages
from adapters.his.header import header
from adapters.his.mllp import MllpFramer, frame, serve_mllp
from tests.unit.adapters.test_his_samples import run

CORPUS = Path(__file__).resolve().parents[2] / ".." / "shared" / "corpus" / "hl7v2"

if not CORPUS.is_dir():
    pytest.skip(
        f"!!! HL7 corpus folder {CORPUS} is absent: the real-world robustness walk did NOT run !!!",
        allow_module_level=True,
    )

NO_DEVICE = "ORU^R01 names no device (no OBX-18, no equipment PRT)"
DOUBLE_ESCAPE = "MSH-1/MSH-2 delimiters '|^~\\\\\\\\&' use '\\\\' twice; each must differ"


@dataclass(frozen=True)
class Expect:
    """What happens to one corpus file."""

    control_id: str | None = None  # MSH-10 read by header(); None: header() refuses the file
    encoding: str = "utf-8"
    messages: int = 1
    events: int = 0
    skipped: tuple[str, ...] = ()
    malformed: str | None = None  # translate raises MalformedMessage with this text
    note: str = field(default="", compare=False)


EXPECTED: dict[str, Expect] = {
    "l4h_ORU-multiline-short-mixed.hl7": Expect(
        "MSGID00231", skipped=(NO_DEVICE,), note="LF line ends, no OBX-18"
    ),
    "l4h_sample_unix.hl7": Expect(
        malformed=DOUBLE_ESCAPE, note="MSH-2 written as ^~\\\\& (a doubled escape from source code)"
    ),
    "l4h_sample_win.hl7": Expect(malformed=DOUBLE_ESCAPE, note="same, with CR LF line ends"),
    "nhc_ADT_A01_v23.hl7": Expect(
        "599102", skipped=("unmapped message type ADT^A01",), note="segments run together on one line"
    ),
    "nhc_BAR_P01_v23.hl7": Expect("0000000001", skipped=("unmapped message type BAR^P01",)),
    "nhc_DFT_P03_v25_mieweb.hl7": Expect(
        "DSD1184185250",
        messages=2,
        skipped=(
            "m1/FT1:1: charge 73630 is not a tracked consumable (no UDI, code not listed)",
            "m2/FT1:1: charge 76775 is not a tracked consumable (no UDI, code not listed)",
        ),
        note="two messages in one file; CPT procedure charges, not consumables",
    ),
    "nhc_MDM_T04_wrapped_malformed.hl7": Expect(
        "{6AF4DC6C-5BF1-", skipped=("unmapped message type MDM^T04",), note="MSH-10 wrapped; unmapped type"
    ),
    "nhc_MFN_M02_v231_8859-1_mirth.hl7": Expect(
        "0", encoding="latin-1", skipped=("unmapped message type MFN^M02",), note="MSH-18 8859/1"
    ),
    "nhc_ORM_O01_v23_catalyze.hl7": Expect(
        "497",
        malformed="segment 7 does not start with a segment id",
        note="OBR wrapped onto a second line: a mapped type with broken structure",
    ),
    "nhc_ORU_R01_v251_NIST_case1.hl7": Expect("NIST-100929110701660", skipped=(NO_DEVICE,)),
    "nhc_ORU_R01_v251_athena.hl7": Expect("20087.3", skipped=(NO_DEVICE,)),
    "nhc_ORU_R01_v251_cerner_en.hl7": Expect("201010010913000771", skipped=(NO_DEVICE,)),
    "nhc_SIU_S12_v231_INVALID_bad-phone.hl7": Expect(
        "FA0DC9EA-5446-42E6-G6D5-A8414B663676", skipped=("unmapped message type SIU^S12",)
    ),
    "nhc_SIU_S14_v23_corepoint.hl7": Expect("20080306953450", skipped=("unmapped message type SIU^S14",)),
    "pyhl7_FHS_BHS_batch_ADT_A04_v25_ASCII.hl7": Expect(
        "12334456778890", encoding="ascii", skipped=("unmapped message type ADT^A04",), note="FHS/BHS batch"
    ),
    "pyhl7_ORU_R01_v24_repetition_subcomponents.hl7": Expect("CNTRL-3456", skipped=(NO_DEVICE,)),
    "pyhl7_ORU_R01_v24_sample.hl7": Expect("CNTRL-3456", skipped=(NO_DEVICE,)),
}


def corpus_files() -> list[Path]:
    return sorted(p for p in CORPUS.iterdir() if p.is_file())


class TestCorpus:
    def test_every_corpus_file_has_a_row(self):
        """The table covers exactly the files in the corpus folder."""
        assert {p.name for p in corpus_files()} == set(EXPECTED)

    @pytest.mark.parametrize("path", corpus_files(), ids=lambda p: p.name)
    def test_file_is_translated_or_rejected_as_stated(self, path):
        """Each file gives the stated header, charset, events and skip reasons, or the stated rejection."""
        expect = EXPECTED[path.name]
        payload = path.read_bytes()
        assert len(split_messages(payload)) == expect.messages
        if expect.control_id is None:  # the MSH itself is unusable: header() and translate() both refuse
            assert expect.malformed is not None
            with pytest.raises(MalformedMessage, match=re.escape(expect.malformed)):
                header(payload)
            with pytest.raises(MalformedMessage, match=re.escape(expect.malformed)):
                run(payload, message_id=path.name)
            return
        inbound = header(payload)
        assert (inbound.control_id, inbound.encoding, inbound.messages) == (
            expect.control_id,
            expect.encoding,
            expect.messages,
        )
        if expect.malformed is not None:  # readable MSH (the hub can answer AE), unreadable body
            with pytest.raises(MalformedMessage, match=re.escape(expect.malformed)):
                run(payload, message_id=inbound.control_id)
            return
        result = run(payload, message_id=inbound.control_id)
        assert (len(result.events), result.failures, result.skipped) == (expect.events, (), expect.skipped)

    def test_rejections_carry_readable_reasons(self):
        """Every rejection message is a sentence about the message, not a Python repr or traceback."""
        for name, expect in EXPECTED.items():
            if expect.malformed is None:
                continue
            with pytest.raises(MalformedMessage) as info:
                run((CORPUS / name).read_bytes(), message_id=name)
            assert "Traceback" not in str(info.value)
            assert len(str(info.value)) > 20


async def handle(payload: bytes, metadata: dict[str, str]) -> bytes:
    """A stand-in for the hub's decision: AA when translated or skipped, AE when malformed or failing."""
    inbound = header(payload)  # raises for files without a usable MSH: the listener closes
    try:
        result = run(payload, message_id=inbound.control_id)
    except MalformedMessage as exc:
        return build_ack(inbound, "AE", error=AckError(str(exc), hl7_code="100"), now=datetime.now(UTC))
    code = "AE" if result.failures else "AA"
    return build_ack(inbound, code, now=datetime.now(UTC))


class TestCorpusOverMllp:
    async def test_listener_answers_or_closes_every_file_and_keeps_serving(self):
        """Each corpus file over MLLP gets an ACK with the stated MSA-1, or a closed connection; the listener survives."""
        server = await serve_mllp(handle, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        answers: dict[str, str | None] = {}
        for path in corpus_files():
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(frame(path.read_bytes()))
            framer = MllpFramer()
            frames: list[bytes] = []
            while not frames and (data := await asyncio.wait_for(reader.read(65536), 5)):
                frames += framer.feed(data)
            answers[path.name] = frames[0].split(b"\r")[1].split(b"|")[1].decode() if frames else None
            writer.close()
        for name, expect in EXPECTED.items():
            if expect.control_id is None:
                assert answers[name] is None, name
            else:
                assert answers[name] == ("AE" if expect.malformed else "AA"), name
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(frame((CORPUS / "pyhl7_ORU_R01_v24_sample.hl7").read_bytes()))
        assert b"MSA|AA|CNTRL-3456" in await asyncio.wait_for(reader.read(65536), 5)
        writer.close()
        server.close()
        await server.wait_closed()
