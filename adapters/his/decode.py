"""HL7 v2 bytes -> text, deciding the character set BEFORE anything splits the message.

Why not split the bytes on `|` and decode each field: in GBK (and GB18030) the second byte of a
two-byte character can be any byte from 0x40 to 0xFE except 0x7F, which includes 0x7C `|`,
0x5E `^`, 0x7E `~` and 0x5C `\\`. `東` is 0x96 0x7C and `淺` is 0x9C 0x5C: a byte splitter cuts
such a character in two, shifts every later field by one and turns half a character into an
escape. Decoding the whole message first makes every delimiter a real character.

Order of decision (the first that applies wins; the same bytes always decode the same way):

1. the channel's forced encoding (a sender known to lie in MSH-18, or to leave it empty);
2. a UTF-8 byte-order mark;
3. MSH-18, read from the raw bytes (see `declared_charset`): `UNICODE UTF-8`, `GB 18030-2000`,
   the non-standard `GBK` / `GB2312` / `CHINESE` that Chinese HIS builds send (all decoded as
   GB18030, their superset), `8859/1`..., `ASCII`;
4. strict UTF-8;
5. GB18030.

A declared charset the bytes do not fit (MSH-18 says ASCII, the bytes hold GBK) falls through to
4 and 5 and `how` says so: the message is kept and readable rather than refused on a label.

`charset_doubt` says, with the likeliest charset, when the text is not what the bytes mean: the
label did not fit them, or it did but the text reads as nonsense (Big5 bytes labelled GBK decode
into kana, box drawing and private-use characters; see adapters._files.encoding.implausible).
It is a separate call, off the hot path; what a channel does with a doubtful message (AE, or AA
with a warning on the raw message) is its caller's rule.
"""

from __future__ import annotations

import codecs
import functools
import re
from typing import Literal, NamedTuple

from adapters._files.encoding import implausible, likeliest
from adapters.errors import MalformedMessage

How = Literal["channel", "bom", "msh18", "utf-8", "gb18030"]

_MSH18 = 18
_LINE_BREAK = re.compile(rb"[\r\n]")
_LEADING_SPACE = re.compile(rb"[ \t\r\n]*")
_MSH_AFTER_BREAK = re.compile(rb"[\r\n]MSH")  # a class first: the engine skips to candidates
_NON_ASCII_RUN = re.compile(rb"(?:[\x80-\xff][\x40-\xff]?)+")
_ASCII_COMPATIBLE = re.compile(
    r"^(utf-8|latin-1|ascii|iso8859-\d+|cp(?:125\d|874|932|936|949|950|437|850|852|866)"
    r"|gb18030|big5|big5hkscs|euc_\w+|shift_jis\w*|koi8-\w)$"
)

# HL7 table 0211 names, and what Chinese HIS builds write in MSH-18 instead. Keys are folded by
# `_fold` (upper case, no spaces, `_`, `-` or `/`), so `GB 18030-2000` and `gb18030` meet.
_CHARSETS: dict[str, str] = {
    "ASCII": "ascii",
    "ISOIR6": "ascii",
    "USASCII": "ascii",
    "UNICODEUTF8": "utf-8",
    "UTF8": "utf-8",
    # Table 0211 "UNICODE" is the deprecated, unspecified form; in an 8-bit stream it is UTF-8.
    "UNICODE": "utf-8",
    "GB180302000": "gb18030",
    "GB18030": "gb18030",
    "GB180302005": "gb18030",
    # Non-standard, seen in the field. GB18030 decodes every GBK and GB2312 byte sequence the
    # same way, and also the characters (rare names, CJK Ext. A) that GBK cannot hold.
    "GBK": "gb18030",
    "CP936": "gb18030",
    "GB2312": "gb18030",
    "GB231280": "gb18030",
    "EUCCN": "gb18030",
    "CHINESE": "gb18030",
    "BIG5": "big5",
    "88591": "latin-1",
    "ISOIR100": "latin-1",
    "ISO88591": "latin-1",
    "LATIN1": "latin-1",
    "88592": "iso8859-2",
    "88595": "iso8859-5",
    "88597": "iso8859-7",
    "88599": "iso8859-9",
    "885915": "iso8859-15",
}


class Decoded(NamedTuple):
    """A decoded message: (text, Python codec used, how it was chosen)."""

    text: str
    encoding: str
    how: How


@functools.lru_cache(maxsize=128)  # a handful of labels recur on every message of a feed
def charset_codec(name: str) -> str | None:
    """The Python codec for an MSH-18 value or channel setting, or None when it is unknown."""
    folded = _fold(name)
    if not folded:
        return None
    if folded in _CHARSETS:
        return _CHARSETS[folded]
    try:
        codec = codecs.lookup(name.strip()).name
    except (LookupError, ValueError):  # ValueError: a NUL in the name (MSH-18 is the sender's text)
        return None
    if codec in {"gbk", "gb2312"}:
        return "gb18030"
    # Only ASCII-compatible text codecs: CR, LF and the delimiters must stay single bytes, and
    # codecs such as rot13 or base64 are not character sets at all.
    return codec if _ASCII_COMPATIBLE.match(codec) else None


# Small payloads decoded lately, known by identity: the MLLP listener reads a frame's MSH and,
# once it is stored, translates the same bytes object, which decoded it a second time. Slots are
# picked by the object's address (collisions only miss); each keeps its payload and text alive
# until it is reused, so only small payloads are kept.
_KEPT_BYTES = 16 * 1024
_SLOTS = 64
_recent: list[tuple[bytes, str | None, Decoded] | None] = [None] * _SLOTS


def decode(payload: bytes, forced_encoding: str | None = None) -> Decoded:
    """Decode one HL7 message (or batch). Raises MalformedMessage when no rule can read the bytes."""
    slot = (id(payload) >> 4) % _SLOTS
    kept = _recent[slot]
    if kept is not None and kept[0] is payload and kept[1] == forced_encoding:
        return kept[2]
    decoded = _decode(payload, forced_encoding)
    if type(payload) is bytes and len(payload) <= _KEPT_BYTES:  # immutable: safe to know by identity
        _recent[slot] = (payload, forced_encoding, decoded)  # one list item replaced: thread-safe
    return decoded


def _decode(payload: bytes, forced_encoding: str | None) -> Decoded:
    if forced_encoding:
        codec = charset_codec(forced_encoding)
        if codec is None:
            raise MalformedMessage(f"channel encoding {forced_encoding!r} is not a known character set")
        return Decoded(
            _strict(payload, codec, f"the channel's encoding {forced_encoding!r}"), codec, "channel"
        )
    if payload.startswith(codecs.BOM_UTF8):
        return Decoded(_strict(payload[3:], "utf-8", "UTF-8 (it starts with a UTF-8 BOM)"), "utf-8", "bom")
    declared = declared_charset(payload)
    if declared:
        codec = charset_codec(declared)
        if codec is not None:
            try:
                return Decoded(payload.decode(codec), codec, "msh18")
            except UnicodeDecodeError:
                pass  # the label lies: the content-based rules below decide, and `how` says so
    try:
        return Decoded(payload.decode("utf-8"), "utf-8", "utf-8")
    except UnicodeDecodeError:
        pass  # not UTF-8: GB18030 is the last rule
    return Decoded(_strict(payload, "gb18030", "UTF-8 or GB18030"), "gb18030", "gb18030")


def charset_doubt(payload: bytes, decoded: Decoded) -> str | None:
    """Why `decoded` (what `decode` made of `payload`) may be mojibake, with the likeliest charset.

    None when the label (channel or MSH-18) fitted the bytes and the text is plausible, or when
    no label was given and the content rules read plausible text.
    """
    reasons: list[str] = []
    if decoded.how in ("utf-8", "gb18030"):
        declared = declared_charset(payload)
        if declared and charset_codec(declared) not in (None, decoded.encoding):
            reasons.append(  # the label lied (decode fell through to the content rules)
                f"MSH-18 says {declared!r}, which the bytes do not fit; read as {decoded.encoding}"
            )
    reason = implausible(decoded.text, decoded.encoding, named=True)
    if reason is not None:
        reasons.append(f"read as {decoded.encoding} ({decoded.how}): {reason}")
    if not reasons:
        return None
    # Delimiters and codes make a whole message look like no charset to charset-normalizer; its
    # non-ASCII runs alone (a lead byte with its trail byte, which may be ASCII in Big5 and GBK)
    # are the text it can judge.
    best = likeliest(payload) or likeliest(b"\n".join(_NON_ASCII_RUN.findall(payload)))
    return "; ".join(reasons) + ("" if best is None else f"; likeliest charset: {best} (charset-normalizer)")


def declared_charset(payload: bytes) -> str | None:
    """MSH-18 (first repetition) read from the raw bytes, or None when absent or unreadable.

    MSH-18 itself is ASCII, but MSH-3..17 may hold multibyte text (a facility name in GBK) whose
    trail bytes can equal the field separator. A first segment that is ASCII or valid UTF-8 is
    split byte by byte (no UTF-8 multibyte sequence holds an ASCII byte). Otherwise it is read
    two ways: byte by byte (right for Latin-1 and other single-byte sets) and decoded as GB18030
    (which pairs every lead byte with its trail bytes); when the two disagree, the reading that
    yields a known character set name wins.
    """
    start = _msh_start(payload)
    if start < 0:
        return None
    segment = payload[start : _line_end(payload, start)]
    if len(segment) < 8:
        return None
    separator = segment[3]
    plain = _msh18(_split_plain(segment, separator))
    if segment.isascii() or _is_utf8(segment):
        return plain
    wide_parts = segment.decode("gb18030", errors="replace").split(chr(separator), _MSH18)
    wide = _msh18([part.encode("utf-8") for part in wide_parts[:_MSH18]])
    for candidate in (wide, plain):
        if candidate is not None and charset_codec(candidate) is not None:
            return candidate
    return plain if plain == wide else None


def _strict(payload: bytes, codec: str, what: str) -> str:
    try:
        return payload.decode(codec)
    except UnicodeDecodeError as exc:
        raise MalformedMessage(
            f"the message cannot be decoded as {what}: byte offset {exc.start} (0x{payload[exc.start]:02X}) "
            f"does not fit"
        ) from exc
    except LookupError as exc:  # a codec name that passed lookup once but cannot decode
        raise MalformedMessage(f"the message cannot be decoded as {what}: {exc}") from exc


def _fold(name: str) -> str:
    return "".join(c for c in name.upper() if c not in " _-/.")


def _msh_start(payload: bytes) -> int:
    """Offset of the first `MSH` that starts a line (after an optional BOM or FHS/BHS header)."""
    # Regular expressions, not a loop over lines: this runs on every MLLP frame before anything
    # else, and a 16 MiB frame of short lines took a minute line by line in Python.
    start = 3 if payload.startswith(codecs.BOM_UTF8) else 0
    leading = _LEADING_SPACE.match(payload, start)
    pos = leading.end() if leading else start
    if payload.startswith(b"MSH", pos):
        return pos
    found = _MSH_AFTER_BREAK.search(payload, pos)
    return -1 if found is None else found.start() + 1


def _line_end(payload: bytes, start: int) -> int:
    # CR and LF never occur inside a UTF-8, GBK or GB18030 character, so this is safe on bytes.
    # One search for either: two finds each scan to the end when a payload holds only one of them.
    end = _LINE_BREAK.search(payload, start)
    return len(payload) if end is None else end.start()


def _split_plain(segment: bytes, separator: int) -> list[bytes]:
    return segment.split(bytes((separator,)), _MSH18)


def _is_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _msh18(parts: list[bytes]) -> str | None:
    # parts[0] is "MSH"; parts[k] is MSH-(k+1) because MSH-1 is the separator itself.
    if len(parts) < _MSH18:
        return None
    raw = parts[_MSH18 - 1]
    if not raw.isascii():
        return None
    repetition = parts[1][1:2] or b"~"
    text = raw.split(repetition)[0].decode("ascii").strip()
    return text or None
