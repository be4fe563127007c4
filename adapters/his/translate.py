"""HIS HL7 v2 -> canonical events. Pure: (raw record, bytes, mapping, context) -> Translation.

Decode first (decode.py), split batches (batch.py), tokenise (tokenize.py), then hand each
message to the handler for its type:

| MSH-9            | handler        | events                                          |
|------------------|----------------|-------------------------------------------------|
| DFT^P03, DFT^P11 | charges.py     | inventory.consumed                              |
| ORU^R01, ORM^O01, OMG^O19 | devices.py | asset.used                               |
| ORU^R01, ORU^R40 | telemetry.py   | asset.telemetry_recorded (IHE PCD-01 / PCD-04)  |
| ESU^U01          | equipment.py   | asset.status_changed (+ telemetry: EQU-5 alert) |
| MFN^M16          | items.py       | inventory.item_defined, inventory.threshold_set |

Any other type is `skipped` as "unmapped message type X^Y" (the hub archives it, answers AA
and counts it); ADT and the other patient-administration messages are among them: their PV1
location matters only inside the messages above. Event ids are uuid5 over ("his", MSH-10,
`SEG:<n>`), so re-translating yields the same events. A message the tokeniser cannot read raises
MalformedMessage; a problem with one unit is a Failure naming segment and field, and no reason
or excerpt ever carries a value from PID (or NK1, GT1, IN1).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from adapters._files.encoding import implausible
from adapters.base import Emitted, Failure, FieldAccounting, SourceLocation, Translation
from adapters.errors import MalformedMessage
from adapters.his.accounting import account_message, ignored_names
from adapters.his.batch import split_text
from adapters.his.charges import translate_charges
from adapters.his.context import MessageContext
from adapters.his.decode import Decoded, charset_doubt, decode
from adapters.his.devices import translate_devices
from adapters.his.equipment import translate_equipment
from adapters.his.header import MessageHeader, header
from adapters.his.items import translate_items
from adapters.his.telemetry import translate_telemetry
from adapters.his.tokenize import tokenise
from schemas._base import SourceSystem
from schemas.envelope import Source

if TYPE_CHECKING:
    from adapters.base import TranslateContext
    from adapters.his.mapping import HisMapping
    from adapters.his.tokenize import Segment
    from hub.ports import RawRecord

Handler = Callable[[MessageContext], None]


def _devices_and_telemetry(mc: MessageContext) -> None:
    """ORU^R01: the devices used, and what IHE PCD-01 devices report about themselves."""
    translate_devices(mc)
    translate_telemetry(mc)


HANDLERS: dict[tuple[str, str], Handler] = {
    ("DFT", "P03"): translate_charges,
    ("DFT", "P11"): translate_charges,
    ("ORU", "R01"): _devices_and_telemetry,
    ("ORU", "R40"): translate_telemetry,
    ("ORM", "O01"): translate_devices,
    ("OMG", "O19"): translate_devices,
    ("ESU", "U01"): translate_equipment,
    ("MFN", "M16"): translate_items,
}

__all__ = ["HANDLERS", "MessageHeader", "header", "translate"]


def translate(raw: RawRecord, payload: bytes, mapping: HisMapping, ctx: TranslateContext) -> Translation:
    """Translate one HL7 payload (a message, or a batch of them). Raises MalformedMessage when unreadable."""
    decoded = decode(payload, mapping.encoding)
    text = decoded.text
    single = text.find("MSH", 3) < 0 and text.lstrip("\ufeff \t\r\n").startswith("MSH")
    texts = [text] if single else split_text(text)
    if not texts:
        raise MalformedMessage("no MSH segment: this is not an HL7 v2 message")
    filename = raw.metadata.get("filename")
    charset = _charset_verdict(payload, decoded, mapping, filename)
    if charset is not None and mapping.charset_doubt == "reject" and charset.code == "charset_mojibake":
        whole = Failure("message", charset.reason, charset.code, charset.location)
        return Translation(failures=(whole,), units=len(texts))
    source = Source(
        system=SourceSystem.HIS,
        site=ctx.site,
        message_id=raw.message_id,
        raw_ref=raw.raw_ref,
        adapter_version=ctx.adapter_version,
    )
    # Only what each message produced is kept, not its tokenised form: a 100 MB batch file would
    # otherwise hold every segment of every message until the end (about 20 times its size).
    events: list[Emitted] = []
    failures: list[Failure] = []
    skipped: list[str] = []
    notes: list[Failure] = [] if charset is None else [charset]
    units = 0
    first_number = 1
    accounting = FieldAccounting()
    ignored = ignored_names(mapping)
    for index, message_text in enumerate(texts, 1):
        message = tokenise(message_text, decoded.encoding, first_number=first_number, strict=False)
        first_number += len(message.segment_list)
        msh = message.segment_list[0]
        code, trigger = msh.field(9, 1).strip().upper(), msh.field(9, 2).strip().upper()
        label = f"{code}^{trigger}"
        mc = MessageContext(
            message=message,
            raw=raw,
            mapping=mapping,
            ctx=ctx,
            source=source,
            type_label=label,
            prefix=f"m{index}/" if len(texts) > 1 else "",
            filename=filename,
        )
        handler = HANDLERS.get((code, trigger))
        if handler is None:
            mc.skip(f"unmapped message type {label}")
        elif not msh.field(10).strip():
            failures.append(_no_control_id(msh, mc.prefix, filename, label))
        else:
            message.check_segments()
            if message.segments("PID"):
                mapping.require_secret()  # refuse before reading anything, not halfway through
            handler(mc)
        tally = account_message(
            message, mapping, mapped=handler is not None, ignored=ignored, passed=mc.passed
        )
        # One message (nearly every MLLP frame): its tally is the whole accounting, no merge to pay.
        accounting = tally if index == 1 else accounting.merged(tally)
        if tally.unclaimed and mapping.unclaimed == "error":
            _refuse_unclaimed(mc, tally)
        events += mc.events
        failures += mc.failures
        skipped += mc.skipped
        notes += mc.notes
        units += mc.units
    return Translation(
        events=tuple(events),
        failures=tuple(failures),
        skipped=tuple(skipped),
        units=units,
        notes=tuple(notes),
        accounting=accounting,
    )


def _no_control_id(msh: Segment, prefix: str, filename: str | None, label: str) -> Failure:
    """The one rule for an empty MSH-10, on every transport: refused, nothing of it applied.

    Without a control id a resend cannot be told from a new message, so applying it would count a
    corrected resend twice. The message is kept (archived, dead-lettered, answered AR over MLLP);
    once the sender fills MSH-10 its resend is applied once. A type the hub does not map applies
    nothing, so it is only archived and counted like any unmapped type (AA).
    """
    return Failure(
        position=f"{prefix}MSH" if prefix else "message",
        reason=(
            f"{prefix}MSH: MSH-10 (message control id) is empty: a {label} without one cannot be told "
            "from its resend, so it is refused and nothing of it is applied; send it again with MSH-10 filled"
        ),
        code="missing_control_id",
        location=SourceLocation(file=filename, line=msh.number, segment="MSH", field="MSH-10"),
    )


def _charset_verdict(
    payload: bytes, decoded: Decoded, mapping: HisMapping, filename: str | None
) -> Failure | None:
    """A doubt about the charset the message was read with, or None.

    `charset_mojibake`: the text reads as nonsense (Big5 bytes under a UTF-8 or GB18030 label);
    the mapping's `charset_doubt` rule decides (reject: the whole message fails; warn: a note).
    `charset_mislabelled`: MSH-18 does not fit the bytes but the content rules read plausible text
    (GBK labelled UTF-8): always only a note, the text is right and the label wrong.
    """
    if mapping.charset_doubt == "ignore" or payload.isascii():
        return None
    doubt = charset_doubt(payload, decoded)
    if doubt is None:
        return None
    # Read by a label the bytes fitted: only what no real message holds counts (kana, boxes);
    # read by the content rules: also a GB text of few common hanzi (Big5 read as GB18030).
    named = decoded.how in ("channel", "bom", "msh18")
    mojibake = implausible(decoded.text, decoded.encoding, named=named) is not None
    return Failure(
        position="MSH-18",
        reason=f"character set: {doubt}",
        code="charset_mojibake" if mojibake else "charset_mislabelled",
        location=SourceLocation(file=filename, line=1, segment="MSH", field="MSH-18"),
    )


def _refuse_unclaimed(mc: MessageContext, tally: FieldAccounting) -> None:
    """`unclaimed: error`: the message lands nothing and its failure names the fields."""
    names = sorted(tally.unclaimed, key=_field_order)
    mc.events.clear()
    mc.notes.clear()  # notes belong to the events that are no longer emitted
    mc.failures.append(
        Failure(
            position=f"{mc.prefix}MSH:1",
            reason=(
                f"{mc.type_label}: non-empty field(s) nothing claims: {', '.join(names)} (`unclaimed: error`:"
                " map them, or list them under `ignore:`)"
            ),
            code="unclaimed_field",
            location=SourceLocation(file=mc.filename, segment=names[0].split("-")[0], field=names[0]),
        )
    )


def _field_order(name: str) -> tuple[str, int]:
    segment, _, n = name.partition("-")
    return segment, int(n)
