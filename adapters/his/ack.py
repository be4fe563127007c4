"""HL7 v2 acknowledgements (original mode): AA, AE, AR with an ERR segment naming what failed.

Built from a template, not with hl7apy: hl7apy takes about 5 ms per ACK here (some 200 ACKs/s),
far below the listener's rate; tests/unit/adapters/test_his_ack.py builds the same ACKs with
hl7apy for versions 2.3 to 2.8 and checks the bytes are identical.

Shape (delimiters, MSH-11, MSH-12 and MSH-18 echo the inbound message; sender and receiver swap):

    MSH|^~\\&|<in MSH-5>|<in MSH-6>|<in MSH-3>|<in MSH-4>|<now>||ACK^<trigger>^ACK|ACK<in MSH-10>|P|2.5
        |||||||<in MSH-18>   (one line; MSH-11, MSH-12 and MSH-18 as the inbound message has them)
    MSA|AE|<in MSH-10>
    ERR||FT1^1^7|103^Table value not found^HL70357|E||||<user message>

ERR-2 (location), ERR-3 (HL7 error code, table 0357), ERR-4 (severity) and ERR-8 (user message)
exist from v2.5; for 2.1-2.4 the location and code go in ERR-1 and the message in MSA-3, as
those versions define. The ACK is encoded in the inbound message's character set. The user
message is the caller's text: it must not hold patient data (translator failures never do).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from adapters.his.tokenize import escape

if TYPE_CHECKING:
    from collections.abc import Sequence
    from datetime import datetime

    from adapters.base import Failure
    from adapters.his.header import MessageHeader

AckCode = Literal["AA", "AE", "AR"]
Severity = Literal["E", "W", "I", "F"]

# HL7 table 0357, message error condition codes.
ERROR_CODES: dict[str, str] = {
    "0": "Message accepted",
    "100": "Segment sequence error",
    "101": "Required field missing",
    "102": "Data type error",
    "103": "Table value not found",
    "104": "Value too long",
    "200": "Unsupported message type",
    "201": "Unsupported event code",
    "202": "Unsupported processing id",
    "203": "Unsupported version id",
    "204": "Unknown key identifier",
    "205": "Duplicate key identifier",
    "206": "Application record locked",
    "207": "Application internal error",
}
_FAILURE_CODES = {
    "missing_field": "101",
    "invalid_timestamp": "102",
    "invalid_number": "102",
    "invalid_event": "102",
    "unknown_code": "103",
    "department_unknown": "103",
    "missing_control_id": "101",
    "charset_mojibake": "207",
    "charset_mislabelled": "207",
    "conflict": "205",
    "malformed": "100",
}
_POSITION = re.compile(r"(?:^|/)(?P<segment>[A-Z][A-Z0-9]{2}):(?P<sequence>\d+)")
_FIELD = re.compile(r"^(?P<segment>[A-Z][A-Z0-9]{2})-(?P<field>\d+)")
_DEFAULT_VERSION = "2.5"


@dataclass(frozen=True, slots=True)
class AckError:
    """What went wrong, for ERR: the user message, the table 0357 code, severity and location."""

    message: str
    hl7_code: str = "207"
    severity: Severity = "E"
    segment: str | None = None
    sequence: int | None = None
    field: int | None = None

    @classmethod
    def from_failure(cls, failure: Failure, severity: Severity = "E") -> AckError:
        """ERR content for a translator Failure: its reason, code and the segment and field the
        dead letter names (its location), so the sender and the integrator read the same place.

        The unit's position gives the segment's sequence when the field is in the unit's own
        segment (FT1:2 and FT1-7: `FT1^2^7`); a field of another segment (an OBX unit whose PV1-3
        ward is unknown) is that segment's first occurrence (`PV1^1^3`), as the translator reads it.
        """
        position = _POSITION.search(failure.position)
        field_match = _FIELD.match(failure.location.field or "")
        segment = (
            field_match["segment"]
            if field_match
            else failure.location.segment or (position["segment"] if position else None)
        )
        if position and position["segment"] == segment:
            sequence: int | None = int(position["sequence"])
        else:
            sequence = 1 if field_match else None
        return cls(
            message=failure.reason,
            hl7_code=_FAILURE_CODES.get(failure.code, "207"),
            severity=severity,
            segment=segment,
            sequence=sequence,
            field=int(field_match["field"]) if field_match else None,
        )


def build_ack(
    header: MessageHeader,
    code: AckCode,
    *,
    error: AckError | None = None,
    errors: Sequence[AckError] = (),
    now: datetime,
) -> bytes:
    """The ACK for `header`'s message, as bytes in the inbound charset (not MLLP-framed).

    One ERR per error (`error`, then `errors`), in order. An AA carries only warnings (severity
    W or I), and only from v2.5, where ERR has a severity; before it, the first error's text goes
    in MSA-3.
    """
    listed = [*([error] if error is not None else []), *errors]
    if now.tzinfo is None:
        raise ValueError("an ACK timestamp needs a time zone")
    seps = header.separators
    version = header.version or _DEFAULT_VERSION
    modern = _version(version) >= (2, 5)
    trigger = header.trigger_event
    if not trigger:
        message_type = "ACK"
    elif _version(version) >= (2, 3, 1):
        message_type = f"ACK{seps.component}{trigger}{seps.component}ACK"
    else:
        message_type = f"ACK{seps.component}{trigger}"
    msh = [
        "MSH",
        seps.encoding_characters,
        header.receiving_application or "HUB",
        header.receiving_facility,
        header.sending_application,
        header.sending_facility,
        now.strftime("%Y%m%d%H%M%S%z"),
        "",
        message_type,
        "ACK" + header.control_id,
        header.processing_id or "P",
        version,
        "",
        "",
        "",
        "",
        "",
        header.charset or "",
    ]
    msa = ["MSA", code, header.control_id]
    segments = [msh, msa]
    if code == "AA":
        listed = [e for e in listed if modern and e.severity in ("W", "I")]
    for n, err in enumerate(listed):
        text = escape(err.message, seps)
        code_text = ERROR_CODES.get(err.hl7_code, "")
        location = [err.segment or "", _num(err.sequence), _num(err.field)]
        if modern:
            segments.append(
                [
                    "ERR",
                    "",
                    seps.component.join(location).rstrip(seps.component),
                    seps.component.join((err.hl7_code, code_text, "HL70357")),
                    err.severity,
                    "",
                    "",
                    "",
                    text,
                ]
            )
        else:
            if n == 0:  # before v2.5 the message text goes in MSA-3
                msa.append(text)
            condition = seps.subcomponent.join((err.hl7_code, code_text, "HL70357"))
            segments.append(["ERR", seps.component.join([*location, condition])])
    # Joining with the field separator writes MSH-1 between "MSH" and MSH-2, as HL7 wants.
    body = "".join(seps.field.join(_trim(fields)) + "\r" for fields in segments)
    return body.encode(header.encoding, errors="replace")


def _trim(fields: list[str]) -> list[str]:
    end = len(fields)
    while end > 1 and not fields[end - 1]:
        end -= 1
    return fields[:end]


def _num(value: int | None) -> str:
    return "" if value is None else str(value)


def _version(text: str) -> tuple[int, ...]:
    parts = []
    for part in text.split("."):
        if not part.isdigit():
            break
        parts.append(int(part))
    return tuple(parts) or (2, 5)


def validate_strict(text: str) -> list[str]:
    """Opt-in strict validation with hl7apy: see adapters.his.validate (every problem, no values)."""
    # Imported here: hl7apy is heavy to load and the listener, which imports this module, never needs it.
    from adapters.his.validate import validate_strict as validate  # noqa: PLC0415

    return validate(text)
