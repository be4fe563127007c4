"""One dedup rule for HL7 on every transport: keys per message, content compared normalised."""

from __future__ import annotations

from pathlib import Path

from adapters.base import Emitted, Failure, SourceLocation, Translation
from hub.ingest.archive import SqliteRawArchive
from hub.ingest.source_keys import apply_parts, hl7_content, hl7_keys
from hub.ports import InboundMessage

MSG = b"MSH|^~\\&|HIS|H1|HUB|H1|20240612||DFT^P03|42|P|2.5\rEVN|P03\rFT1|1\r"
OTHER = MSG.replace(b"|42|", b"|43|")


def inbound(payload: bytes, transport: str = "file") -> InboundMessage:
    return InboundMessage(
        system="his", payload=payload, transport=transport, message_id="x", site="main", metadata={}
    )


def test_line_endings_do_not_change_the_content() -> None:
    assert (
        hl7_content(MSG) == hl7_content(MSG.replace(b"\r", b"\n")) == hl7_content(MSG.replace(b"\r", b"\r\n"))
    )
    assert hl7_content(MSG) != hl7_content(MSG.replace(b"FT1|1", b"FT1|2"))


def test_a_key_per_message_numbered_in_payload_order() -> None:
    keys = hl7_keys(MSG.replace(b"\r", b"\n") + b"\n" + OTHER)
    assert [(k.part, k.key.split("\x1f")) for k in keys] == [
        (1, ["HIS", "H1", "42"]),
        (2, ["HIS", "H1", "43"]),
    ]


async def test_same_message_other_line_endings_is_a_resend_of_the_first(tmp_path: Path) -> None:
    archive = SqliteRawArchive(tmp_path / "archive.db")
    first = await archive.store(inbound(MSG, "mllp"), keys=hl7_keys(MSG))
    await archive.save_answer(first.record.raw_ref, b"MSA|AA|42")
    lf = MSG.replace(b"\r", b"\n")
    again = await archive.store(inbound(lf), keys=hl7_keys(lf))
    assert again.duplicate
    assert again.record.raw_ref == first.record.raw_ref
    assert again.answer == b"MSA|AA|42"
    assert (await archive.reconciliation())["his"]["received"] == 1
    archive.close()


async def test_a_batch_names_its_resent_and_conflicting_messages(tmp_path: Path) -> None:
    archive = SqliteRawArchive(tmp_path / "archive.db")
    first = await archive.store(inbound(MSG), keys=hl7_keys(MSG))
    changed = OTHER.replace(b"FT1|1", b"FT1|9")
    await archive.store(inbound(changed), keys=hl7_keys(changed))
    third = MSG.replace(b"|42|", b"|44|")
    batch = MSG.replace(b"\r", b"\r\n") + OTHER + third
    stored = await archive.store(inbound(batch), keys=hl7_keys(batch))
    assert not stored.duplicate
    assert stored.record.metadata["resent_parts"] == f"1={first.record.raw_ref}"
    assert stored.record.metadata["conflict_parts"].startswith("2=his:")
    archive.close()

    def emitted(position: str) -> Emitted:
        return Emitted(event=None, position=position, location=SourceLocation())  # type: ignore[arg-type]

    translation = Translation(
        events=(emitted("m1/FT1:1"), emitted("m2/FT1:1"), emitted("m3/FT1:1")),
        failures=(Failure("m2/FT1:1", "bad", "value", SourceLocation()),),
    )
    kept = apply_parts(translation, stored.record)
    assert [e.position for e in kept.events] == ["m3/FT1:1"]
    assert [(f.position, f.code) for f in kept.failures] == [("m2/MSH", "conflict")]
    assert any("exact resend" in s for s in kept.skipped)


async def test_a_message_repeated_inside_one_file_counts_once(tmp_path: Path) -> None:
    archive = SqliteRawArchive(tmp_path / "archive.db")
    twice = MSG + MSG.replace(b"\r", b"\n")
    stored = await archive.store(inbound(twice), keys=hl7_keys(twice))
    assert stored.record.metadata["resent_parts"] == f"2={stored.record.raw_ref}"
    archive.close()
