"""One dedup rule per source, the same on every transport.

HL7 v2 (HIS): a message is known by MSH-3, MSH-4 and MSH-10, and its content by the sha256 of
its bytes with line endings normalised (CR, LF and CRLF all read as the segment separator CR)
and surrounding blank space left out. So the same DFT^P03 sent over MLLP, saved to a file with
LF line endings, dropped again under another name, or POSTed to /ingest/his is one message:
the archive (hub.archive.SqliteRawArchive.store) lets the first copy own the key, answers an
exact resend with the first record, and flags the same key with other content as a conflict.
A file may hold several messages; each is keyed on its own (`part`, numbered from 1 in payload
order, as the HIS translator numbers them `m<part>/` in positions).

Other sources are deduplicated by the bytes alone (the archive's content-addressed raw ref).
"""

from __future__ import annotations

import hashlib
from dataclasses import replace
from typing import TYPE_CHECKING

from adapters.base import Failure, SourceLocation
from adapters.errors import MalformedMessage
from adapters.his.batch import split_messages
from adapters.his.header import header
from hub.ingest.archive import META_CONFLICT_PARTS, META_RESENT_PARTS, SourceKey, parse_parts

if TYPE_CHECKING:
    from adapters.base import Translation
    from hub.ports import RawRecord

HL7_SYSTEMS = frozenset({"his"})
_BLANK = b"\xef\xbb\xbf \t\r\n"


def normalised_hl7(message: bytes) -> bytes:
    """The message's bytes as compared for a resend: CR between segments, no surrounding blank space."""
    return message.strip(_BLANK).replace(b"\r\n", b"\r").replace(b"\n", b"\r")


def hl7_content(message: bytes) -> str:
    return hashlib.sha256(normalised_hl7(message)).hexdigest()


def hl7_keys(payload: bytes, encoding: str | None = None) -> tuple[SourceKey, ...]:
    """A key per message in `payload`; a message whose MSH cannot be read, or whose MSH-10 is
    empty, gets none (it fails later, never applied)."""
    keys: list[SourceKey] = []
    for part, message in enumerate(split_messages(payload), 1):
        try:
            head = header(message, encoding)
        except MalformedMessage:
            continue
        if head.dedupe_key is not None:  # an empty MSH-10 has no key: refused by the translator
            keys.append(SourceKey(head.dedupe_key, hl7_content(message), part))
    return tuple(keys)


def source_keys(system: str, payload: bytes, encoding: str | None = None) -> tuple[SourceKey, ...]:
    """The source keys of a payload of `system` (none for sources deduplicated by bytes alone)."""
    return hl7_keys(payload, encoding) if system in HL7_SYSTEMS else ()


def apply_parts(translation: Translation, record: RawRecord) -> Translation:
    """Leave out what the archive found already received in a payload of several messages.

    A resent message contributes nothing (skipped, naming the record that has it); a message
    whose key came before with other content is one conflict failure, nothing of it published.
    """
    resent = parse_parts(record.metadata.get(META_RESENT_PARTS))
    conflicts = parse_parts(record.metadata.get(META_CONFLICT_PARTS))
    if not resent and not conflicts:
        return translation
    prefixes = tuple(f"m{part}/" for part in (*resent, *conflicts))
    unit = record.metadata.get("filename") or record.message_id
    extra = tuple(
        Failure(
            position=f"m{part}/MSH",
            reason=(
                f"message {part}: its MSH-10 was already received with different content"
                f" (archived as {ref}); this one is kept but not translated"
            ),
            code="conflict",
            location=SourceLocation(file=unit, segment="MSH", field="MSH-10"),
        )
        for part, ref in sorted(conflicts.items())
    )
    return replace(
        translation,
        events=tuple(e for e in translation.events if not e.position.startswith(prefixes)),
        failures=tuple(f for f in translation.failures if not f.position.startswith(prefixes)) + extra,
        notes=tuple(f for f in translation.notes if not f.position.startswith(prefixes)),
        skipped=translation.skipped
        + tuple(f"message {part}: an exact resend of {ref}" for part, ref in sorted(resent.items())),
    )
