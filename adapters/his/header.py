"""The MSH of a message, read cheaply: what the hub needs to deduplicate, route and acknowledge.

Values are the field text as sent (escape sequences kept), so an ACK can echo them exactly and
two resends compare equal byte for byte. Nothing here reads beyond the MSH segment.
"""

from __future__ import annotations

from dataclasses import dataclass

from adapters.errors import MalformedMessage
from adapters.his.batch import split_text
from adapters.his.decode import How, decode
from adapters.his.tokenize import Separators, read_separators, unescape

_MSH_FIELDS = 18  # MSH-1 .. MSH-18 are read


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
    control_id: str  # MSH-10 (may be empty: such a message is refused, never applied)
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
    def dedupe_key(self) -> str | None:
        """MSH-3, MSH-4 and MSH-10: what makes a resend the same message (None: MSH-10 is empty)."""
        if not self.control_id:
            return None
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
    # The listener reads every MSH: plain list indexing here, not Segment objects (parts[k] is MSH-(k+1)).
    parts = first.split(separators.field)
    parts += [""] * (_MSH_FIELDS - len(parts))
    # An empty MSH-10 is read, not refused: the hub keeps and answers such a message (AR; see
    # adapters.his.translate._no_control_id), it only cannot deduplicate it (`dedupe_key` None).
    control_id = parts[9].strip()
    message_type = parts[8].strip()
    if not message_type:
        raise MalformedMessage("MSH-9 (message type) is empty")
    code, trigger = (_component(message_type, separators, i, decoded.encoding).upper() for i in (0, 1))
    return MessageHeader(
        sending_application=parts[2],
        sending_facility=parts[3],
        receiving_application=parts[4],
        receiving_facility=parts[5],
        timestamp=parts[6],
        message_type=message_type,
        message_code=code,
        trigger_event=trigger,
        control_id=control_id,
        processing_id=_component(parts[10], separators, 0, decoded.encoding),
        version=_component(parts[11], separators, 0, decoded.encoding),
        charset=_component(parts[17].split(separators.repetition)[0], separators, None, decoded.encoding)
        or None,
        encoding=decoded.encoding,
        how_decided=decoded.how,
        separators=separators,
        messages=count,
    )


def _component(value: str, separators: Separators, index: int | None, encoding: str) -> str:
    """Component `index` (0-based; None: the whole value) of an MSH field, unescaped and stripped."""
    if index is not None:
        parts = value.split(separators.component)
        value = parts[index] if index < len(parts) else ""
    if separators.escape in value:
        value = unescape(value, separators, encoding)
    return value.strip()
