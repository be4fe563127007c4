"""Splitting a payload that holds several HL7 messages: FHS/BHS batches, or messages one after another.

Each message gets its own MSH-10, so the hub should archive, deduplicate and acknowledge them
one by one: `split_messages` cuts the raw bytes (for the archive), `split_text` the decoded text
(for the translator). Cutting bytes at line starts is safe in every charset the hub reads: CR and
LF never occur inside a UTF-8, GBK or GB18030 character, so a line always starts a character.
Batch envelope segments (FHS, BHS, BTS, FTS) carry no business data and are dropped.
"""

from __future__ import annotations

import re
from typing import AnyStr

_ENVELOPE = ("FHS", "BHS", "BTS", "FTS")
# A line start is the beginning, or just after CR or LF. The patterns begin with the character
# class, not a look-behind or `^`: the regex engine then skips ahead to candidates instead of
# trying every position (seconds for a 16 MiB frame, which every MLLP message goes through).
_FIRST = re.compile(rb"(MSH|FHS|BHS|BTS|FTS)(?=[^A-Za-z0-9\r\n])")
_LINE_START = re.compile(rb"[\r\n](MSH|FHS|BHS|BTS|FTS)(?=[^A-Za-z0-9\r\n])")
_TEXT_FIRST = re.compile(r"(MSH|FHS|BHS|BTS|FTS)(?=[^A-Za-z0-9\r\n])")
_TEXT_LINE_START = re.compile(r"[\r\n](MSH|FHS|BHS|BTS|FTS)(?=[^A-Za-z0-9\r\n])")


def split_messages(payload: bytes) -> list[bytes]:
    """The messages in `payload`, each as its exact bytes from `MSH` up to the next message or envelope.

    Trailing line breaks and blank lines between messages are left out. A payload without any
    line starting with MSH yields [] (the caller reports it as malformed).
    """
    cuts = _cuts(payload, _FIRST, _LINE_START)
    messages: list[bytes] = []
    for i, (start, kind) in enumerate(cuts):
        if kind != b"MSH":
            continue
        end = cuts[i + 1][0] if i + 1 < len(cuts) else len(payload)
        messages.append(payload[start:end].rstrip(b"\r\n \t"))
    return messages


def split_text(text: str) -> list[str]:
    """`split_messages` for decoded text."""
    cuts = _cuts(text, _TEXT_FIRST, _TEXT_LINE_START)
    messages: list[str] = []
    for i, (start, kind) in enumerate(cuts):
        if kind != "MSH":
            continue
        end = cuts[i + 1][0] if i + 1 < len(cuts) else len(text)
        messages.append(text[start:end].rstrip("\r\n \t"))
    return messages


def _cuts(data: AnyStr, first: re.Pattern[AnyStr], later: re.Pattern[AnyStr]) -> list[tuple[int, AnyStr]]:
    """(offset, segment id) of every line that starts a message or an envelope segment."""
    head = first.match(data)
    found = [(0, head.group(1))] if head else []
    return found + [(m.start(1), m.group(1)) for m in later.finditer(data)]


def is_envelope(segment_id: str) -> bool:
    """True for the batch/file header and trailer segments."""
    return segment_id in _ENVELOPE
