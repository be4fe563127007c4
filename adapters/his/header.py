"""The MSH of a message, read cheaply: what the hub needs to deduplicate, route and acknowledge.

Values are the field text as sent (escape sequences kept), so an ACK can echo them exactly and
two resends compare equal byte for byte. Nothing here reads beyond the MSH segment.
"""

from __future__ import annotations

from dataclasses import dataclass

from adapters.errors import MalformedMessage
from adapters.his.batch import split_text
from adapters.his.decode import How, decode
from adapters.his.tokenize import Segment, Separators, read_separators


@dataclass(frozen=True, slots=True)
class MessageHeader:
    """MSH fields of the first message in a payload, and how its bytes were decoded."""

    sending_application: str  # MSH-3
    sending_facility: str  # MSH-4
    receiving_application: str  # MSH-5
    receiving_facility: str  # MSH-6
    timestamp: str  # MSH-7
    message_type: str  # MSH-9 as sent, e.g. DFT^P03^DFT_P03
    message_code: str  # MSH-9.1, e.g. DFT
    trigger_event: str  # MSH-9.2, e.g. P03
    control_id: str  # MSH-10
    processing_id: str  # MSH-11.1 (P, T, D)
    version: str  # MSH-12.1, e.g. 2.5.1
    charset: str | None  # MSH-18 (first repetition) as sent, echoed in the ACK
    encoding: str  # the Python codec the payload was decoded with
    how_decided: How
    separators: Separators
    messages: int = 1  # MSH segments in the payload (a batch holds several)

    @property
    def type_label(self) -> str:
        """`CODE^TRIGGER`, as people write a message type."""
        return f"{self.message_code}^{self.trigger_event}" if self.trigger_event else self.message_code

    @property
    def dedupe_key(self) -> str:
        """MSH-3, MSH-4 and MSH-10: what makes a resend the same message."""
        return f"{self.sending_application}\x1f{self.sending_facility}\x1f{self.control_id}"


def header(payload: bytes, forced_encoding: str | None = None) -> MessageHeader:
    """Read the first MSH of `payload`. Raises MalformedMessage with the reason when it cannot."""
    decoded = decode(payload, forced_encoding)
    text = decoded.text
    count = 1
    if text.find("MSH", 3) >= 0 or not text.lstrip("\ufeff \t\r\n").startswith("MSH"):
        messages = split_text(text)
        if not messages:
            raise MalformedMessage("no MSH segment: this is not an HL7 v2 message")
        text, count = messages[0], len(messages)
    text = text.lstrip("\ufeff \t\r\n")
    ends = [i for i in (text.find("\r"), text.find("\n")) if i >= 0]
    first = text[: min(ends)] if ends else text
    if not first.startswith("MSH"):
        raise MalformedMessage("the message does not start with an MSH segment")
    separators = read_separators(first)
    msh = Segment(first, 1, separators, decoded.encoding)
    control_id = msh.raw(10).strip()
    if not control_id:
        raise MalformedMessage("MSH-10 (message control id) is empty: the message cannot be acknowledged")
    message_type = msh.raw(9).strip()
    if not message_type:
        raise MalformedMessage("MSH-9 (message type) is empty")
    return MessageHeader(
        sending_application=msh.raw(3),
        sending_facility=msh.raw(4),
        receiving_application=msh.raw(5),
        receiving_facility=msh.raw(6),
        timestamp=msh.raw(7),
        message_type=message_type,
        message_code=msh.field(9, 1).strip().upper(),
        trigger_event=msh.field(9, 2).strip().upper(),
        control_id=control_id,
        processing_id=msh.field(11, 1).strip(),
        version=msh.field(12, 1).strip(),
        charset=msh.field(18).strip() or None,
        encoding=decoded.encoding,
        how_decided=decoded.how,
        separators=separators,
        messages=count,
    )
