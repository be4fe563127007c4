"""What the hub answers an HL7 payload, message by message, from what it did with it (pure).

One ACK per message, so a frame or file holding several messages (a FHS/BHS batch, or messages
one after another) is answered per MSH-10, in order; a batch is answered as a batch (BHS ...
ACKs ... BTS, inside FHS/FTS when it came in one). Per message, from its units' outcome:

- AR: MSH-10 is empty (code `missing_control_id`): refused, nothing of it applied;
- AE: some of its units failed (dead letters): one ERR per failed unit, severity E, naming the
  segment and field its dead letter names; its other units are applied;
- AA: applied (or of a type the hub does not map: archived and counted); units kept with a field
  unknown (notes, e.g. a ward code not in the mapping) are named in ERR with severity W.

A failure at position `message` (the whole payload: unreadable, refused, a charset that does not
fit) counts for every message of it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from adapters.his.ack import AckCode, AckError, build_ack

if TYPE_CHECKING:
    from collections.abc import Sequence
    from datetime import datetime

    from adapters.base import Failure, Translation
    from adapters.his.header import MessageHeader

ERRORS_NAMED = 10  # ERR segments in one ACK at most (a 500-line charge file fails in one place)
REFUSED = "missing_control_id"
_WHOLE = ("message", "MSH-18")


@dataclass(frozen=True, slots=True)
class Verdict:
    """The answer's bytes and each message's MSA-1, in payload order."""

    answer: bytes
    codes: tuple[AckCode, ...]


def verdict(
    heads: Sequence[MessageHeader | None], translation: Translation, now: datetime, *, batch: bool = False
) -> Verdict:
    """The answer to a payload of `heads` (None: a message whose MSH cannot be read, not answered)."""
    several = len(heads) > 1
    acks: list[bytes] = []
    codes: list[AckCode] = []
    for index, head in enumerate(heads, 1):
        if head is None:
            continue
        prefix = f"m{index}/" if several else ""
        failures = _of(translation.failures, prefix)
        notes = _of(translation.notes, prefix)
        code: AckCode = "AA"
        if any(f.code == REFUSED for f in failures):
            code = "AR"
        elif failures:
            code = "AE"
        errors = [AckError.from_failure(f) for f in failures[:ERRORS_NAMED]]
        errors += [AckError.from_failure(n, "W") for n in notes[: max(0, ERRORS_NAMED - len(errors))]]
        acks.append(build_ack(head, code, errors=errors, now=now))
        codes.append(code)
    if not several:
        return Verdict(acks[0], tuple(codes))
    first = next(h for h in heads if h is not None)
    body = b"".join(acks)
    if batch:
        body = _batch(first, len(acks), body, now)
    return Verdict(body, tuple(codes))


def _of(failures: Sequence[Failure], prefix: str) -> list[Failure]:
    if not prefix:
        return list(failures)
    return [f for f in failures if f.position.startswith(prefix) or f.position in _WHOLE]


def _batch(head: MessageHeader, count: int, body: bytes, now: datetime) -> bytes:
    """ACKs of a batch as a batch: BHS, the ACKs, BTS with their count (one file: FHS ... FTS)."""
    seps = head.separators
    stamp = now.strftime("%Y%m%d%H%M%S%z")
    fields = [
        seps.encoding_characters,
        head.receiving_application or "HUB",
        head.receiving_facility,
        head.sending_application,
        head.sending_facility,
        stamp,
    ]
    f = seps.field
    bhs = ("BHS" + f + f.join(fields) + "\r").encode(head.encoding, errors="replace")
    fhs = ("FHS" + f + f.join(fields) + "\r").encode(head.encoding, errors="replace")
    return fhs + bhs + body + f"BTS{f}{count}\rFTS{f}1\r".encode("ascii")
