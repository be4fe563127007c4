"""A fast HL7 v2 tokeniser over decoded text: segments now, everything else when asked.

The hot path reads a handful of fields out of 10-20 segments, so the message is split into
segments once and each segment into fields only when first read; repetitions, components and
subcomponents are split per access, and escape sequences are undone only on the value returned.
hl7apy's full parse (about 20 messages/s here) and python-hl7's (about 600/s) build every node
of the tree; this reads what the translator needs at tens of thousands of messages per second.

Numbering is HL7's, 1-based: `segment.field(7, component=1)` is FT1-7.1. MSH is the exception
HL7 itself makes: MSH-1 is the field separator and MSH-2 the encoding characters, so MSH-3 is
the first field after them. Repetitions are 0-based (`repetition=1` is the second one).

Escape sequences: `\\F\\ \\S\\ \\T\\ \\R\\ \\E\\` become the delimiter they stand for, `\\P\\` the
truncation character (v2.7+), `\\Xhh..\\` the bytes it spells, decoded in the message's charset.
Formatting (`\\H\\ \\N\\ \\.br\\`...) and local `\\Z..\\` sequences are kept as they are.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

from adapters.errors import MalformedMessage

_SEGMENT_ID = re.compile(r"[A-Z][A-Z0-9]{2}")
_VALID_IDS: set[str] = set()
_HEX = re.compile(r"(?:[0-9A-Fa-f]{2})+")


@dataclass(frozen=True, slots=True)
class Separators:
    """The delimiters of one message, from MSH-1 and MSH-2."""

    field: str = "|"
    component: str = "^"
    repetition: str = "~"
    escape: str = "\\"
    subcomponent: str = "&"
    truncation: str = ""

    @property
    def encoding_characters(self) -> str:
        """MSH-2 as it is written."""
        return self.component + self.repetition + self.escape + self.subcomponent + self.truncation


DEFAULT_SEPARATORS = Separators()


def read_separators(text: str) -> Separators:
    """Separators from a segment starting `MSH` (or FHS/BHS). Raises MalformedMessage when unusable."""
    if len(text) < 8:
        raise MalformedMessage(f"the {text[:3] or 'MSH'} segment is too short to hold its delimiters")
    field = text[3]
    end = text.find(field, 4)
    return _separators(field, text[4:] if end < 0 else text[4:end])


@functools.lru_cache(maxsize=64)  # a feed uses one delimiter set: validate it once, not per message
def _separators(field: str, chars: str) -> Separators:
    if len(chars) not in (4, 5):
        raise MalformedMessage(
            f"MSH-2 must hold 4 encoding characters (5 with the truncation character); it holds {len(chars)}"
        )
    every = field + chars
    repeated = sorted({c for c in every if every.count(c) > 1})
    if repeated:
        raise MalformedMessage(
            f"MSH-1/MSH-2 delimiters {every!r} use {repeated[0]!r} twice; each must differ"
        )
    if any(c.isalnum() or c.isspace() for c in every):
        raise MalformedMessage(f"MSH-1/MSH-2 delimiters {every!r} must not be letters, digits or spaces")
    return Separators(field, chars[0], chars[1], chars[2], chars[3], chars[4] if len(chars) == 5 else "")


class Segment:
    """One segment. Fields are split on first access; values are unescaped on access only."""

    __slots__ = ("_encoding", "_fields", "_separators", "id", "number", "read", "text")

    def __init__(self, text: str, number: int, separators: Separators, encoding: str) -> None:
        self.text = text
        # Field numbers something asked for (field, raw or repetitions): field accounting's
        # "claimed" (adapters/his/accounting.py). One set add per access.
        self.read: set[int] = set()
        self.id = text[:3]
        self.number = number  # 1-based position in the message (or the batch it came from)
        self._separators = separators
        self._encoding = encoding
        self._fields: list[str] | None = None

    def __repr__(self) -> str:  # never the content: segments can hold patient data
        return f"<Segment {self.id} #{self.number}>"

    @property
    def fields(self) -> list[str]:
        """Raw (escaped) fields; index n is field n (for MSH too: index 1 is MSH-1)."""
        if self._fields is None:
            separator = self._separators.field
            parts = self.text.split(separator)
            if self.id == "MSH":
                parts.insert(1, separator)
            self._fields = parts
        return self._fields

    def raw(self, n: int) -> str:
        """Field n as sent: every repetition, delimiters and escape sequences untouched."""
        fields = self.fields
        self.read.add(n)
        return fields[n] if 0 < n < len(fields) else ""

    def repetitions(self, n: int) -> int:
        """How many repetitions field n holds (0 when it is empty)."""
        value = self.raw(n)
        if not value:
            return 0
        if self.id == "MSH" and n <= 2:
            return 1
        return value.count(self._separators.repetition) + 1

    def field(
        self, n: int, component: int | None = None, repetition: int = 0, subcomponent: int | None = None
    ) -> str:
        """The unescaped value at n[.component[.subcomponent]] of the given repetition ("" when absent).

        With `component=None` the whole repetition is returned, unescaped: use it for fields
        that have no components (ST, NM, TS).
        """
        # The hot path of the whole adapter: attribute lookups are kept local on purpose.
        fields = self._fields if self._fields is not None else self.fields
        if n < 1 or (component is not None and component < 1):
            raise ValueError(f"{self.id}-{n}: fields and components count from 1")
        self.read.add(n)
        if n >= len(fields):
            return ""
        value = fields[n]
        if not value or (n <= 2 and self.id == "MSH"):
            return value
        seps = self._separators
        if repetition or seps.repetition in value:
            value = _nth(value, seps.repetition, repetition)
        if component is not None or subcomponent is not None:
            value = _nth(value, seps.component, (1 if component is None else component) - 1)
            if subcomponent is not None:
                value = _nth(value, seps.subcomponent, subcomponent - 1)
        if seps.escape in value:
            return unescape(value, seps, self._encoding)
        return value


def _nth(value: str, separator: str, index: int) -> str:
    """Part `index` (0-based) of `value` split on `separator`; "" past the end."""
    if index < 0:
        raise ValueError("components and subcomponents count from 1, repetitions from 0")
    if separator not in value:
        return value if index == 0 else ""
    parts = value.split(separator)
    return parts[index] if index < len(parts) else ""


class Message:
    """One HL7 message: its separators and segments, with lazy field access."""

    __slots__ = ("_by_id", "encoding", "segment_list", "separators")

    def __init__(self, lines: list[str], separators: Separators, encoding: str, first_number: int) -> None:
        self.separators = separators
        self.encoding = encoding
        self.segment_list = [
            Segment(line, first_number + i, separators, encoding) for i, line in enumerate(lines)
        ]
        self._by_id: dict[str, list[Segment]] | None = None

    def __repr__(self) -> str:
        return f"<Message {len(self.segment_list)} segments>"

    def segments(self, segment_id: str | None = None) -> list[Segment]:
        """All segments, or those with this id, in message order."""
        if segment_id is None:
            return self.segment_list
        if self._by_id is None:
            index: dict[str, list[Segment]] = {}
            for segment in self.segment_list:
                index.setdefault(segment.id, []).append(segment)
            self._by_id = index
        return self._by_id.get(segment_id, [])

    def segment(self, segment_id: str, occurrence: int = 1) -> Segment | None:
        """The n-th (1-based) segment with this id, or None."""
        found = self.segments(segment_id)
        return found[occurrence - 1] if 0 < occurrence <= len(found) else None

    def get(  # noqa: PLR0917 - mirrors Segment.field, plus which occurrence
        self,
        segment_id: str,
        n: int,
        component: int | None = None,
        repetition: int = 0,
        subcomponent: int | None = None,
        occurrence: int = 1,
    ) -> str:
        """`field(...)` of the n-th segment with this id; "" when the segment is absent."""
        segment = self.segment(segment_id, occurrence)
        return "" if segment is None else segment.field(n, component, repetition, subcomponent)

    def check_segments(self) -> None:
        """Raise MalformedMessage unless every segment starts with an id and the field separator.

        A segment that does not is almost always a line break inside a field (a wrapped note),
        which shifts everything after it. The reason never quotes the text: it may be clinical.
        """
        separator = self.separators.field
        for segment in self.segment_list:
            text = segment.text
            known = segment.id in _VALID_IDS or _remember_id(segment.id)
            if not known or (len(text) > 3 and text[3] != separator):
                raise MalformedMessage(
                    f"segment {segment.number} does not start with a segment id (3 capitals or digits) "
                    f"and {separator!r}: is there a line break inside a field?"
                )
            if segment.id == "MSH" and segment is not self.segment_list[0]:
                raise MalformedMessage(
                    f"segment {segment.number} starts a second message: split batches with split_messages"
                )


def _remember_id(segment_id: str) -> bool:
    if not _SEGMENT_ID.fullmatch(segment_id):
        return False
    _VALID_IDS.add(segment_id)  # at most 26 x 36 x 36 ids exist: the set stays small
    return True


def field(segment: Segment, n: int, component: int | None = None, repetition: int = 0) -> str:
    """Module-level spelling of `segment.field(n, component, repetition)`."""
    return segment.field(n, component, repetition)


def segment_lines(text: str) -> list[str]:
    """Segments of decoded text: split on CR, tolerating LF and CR LF; blank lines dropped."""
    if "\n" in text:
        text = text.replace("\r\n", "\r").replace("\n", "\r")
    return [line for line in text.split("\r") if line and not line.isspace()]


def tokenise(text: str, encoding: str = "utf-8", *, first_number: int = 1, strict: bool = True) -> Message:
    """Tokenise one decoded message. `strict` also checks every segment's id (see check_segments)."""
    lines = segment_lines(text.lstrip("\ufeff \t\r\n"))
    if not lines or not lines[0].startswith("MSH"):
        raise MalformedMessage("the message does not start with an MSH segment")
    message = Message(lines, read_separators(lines[0]), encoding, first_number)
    if strict:
        message.check_segments()
    return message


def escape(value: str, separators: Separators = DEFAULT_SEPARATORS) -> str:
    """Escape a value for a field: delimiters as \\F\\ \\S\\ \\T\\ \\R\\ \\E\\, CR and LF as hex."""
    esc = separators.escape
    out = value.replace(esc, f"{esc}E{esc}")
    for char, code in (
        (separators.field, "F"),
        (separators.component, "S"),
        (separators.subcomponent, "T"),
        (separators.repetition, "R"),
        (separators.truncation, "P"),
    ):
        if char:
            out = out.replace(char, f"{esc}{code}{esc}")
    return out.replace("\r", f"{esc}X0D{esc}").replace("\n", f"{esc}X0A{esc}")


def unescape(value: str, separators: Separators = DEFAULT_SEPARATORS, encoding: str = "utf-8") -> str:
    """Undo HL7 escape sequences; unknown or formatting sequences and a lone escape stay as they are."""
    esc = separators.escape
    if esc not in value:
        return value
    singles = {
        "F": separators.field,
        "S": separators.component,
        "T": separators.subcomponent,
        "R": separators.repetition,
        "E": esc,
    }
    if separators.truncation:
        singles["P"] = separators.truncation
    out: list[str] = []
    pos = 0
    while True:
        start = value.find(esc, pos)
        end = value.find(esc, start + 1) if start >= 0 else -1
        if end < 0:
            out.append(value[pos:])
            return "".join(out)
        out.append(value[pos:start])
        body = value[start + 1 : end]
        replacement = singles.get(body)
        if replacement is None and body[:1] == "X" and _HEX.fullmatch(body, 1):
            replacement = _hex_text(body[1:], encoding)
        out.append(value[start : end + 1] if replacement is None else replacement)
        pos = end + 1


def _hex_text(digits: str, encoding: str) -> str | None:
    try:
        return bytes.fromhex(digits).decode(encoding)
    except (UnicodeDecodeError, LookupError):
        return None
