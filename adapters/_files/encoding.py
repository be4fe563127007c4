"""Decoding export bytes to text: UTF-8 (with or without BOM), GBK and GB18030.

Hospital systems export whatever their Windows locale wrote: Excel's "CSV UTF-8" adds a BOM,
older HRP/SPD builds write GBK, newer ones GB18030. Detection is deterministic on purpose (the
same bytes must always decode the same way, or re-translation would not be reproducible):

1. a byte-order mark decides (UTF-8 BOM -> `utf-8-sig`; UTF-16 BOMs, as Excel's "Unicode text");
2. bytes that decode as strict UTF-8 are UTF-8 (GBK text almost never does: `联通` is the classic
   exception Notepad got wrong, and Python's strict decoder rejects its overlong lead byte);
3. otherwise GB18030, a superset of GBK and GB2312, so one decoder covers all three.

charset-normalizer is consulted only when all of that fails, to name a likely encoding in the
error; it never picks the decoder, because its guesses can change between releases.
"""

from __future__ import annotations

import codecs
from dataclasses import dataclass
from typing import Literal

import charset_normalizer

from adapters.errors import MalformedMessage

EncodingChoice = Literal["auto", "utf-8", "gbk", "gb18030"]

_BOMS: tuple[tuple[bytes, str], ...] = (
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)


@dataclass(frozen=True, slots=True)
class DecodedText:
    """Text of an export and the codec that produced it (`utf-8-sig`, `utf-8`, `gb18030`...)."""

    text: str
    encoding: str


def decode_export(data: bytes, *, filename: str, encoding: EncodingChoice = "auto") -> DecodedText:
    """Decode `data` as the mapping says (`auto` follows the module's order); never guesses silently.

    Raises MalformedMessage naming `filename` and the first byte offset that does not decode.
    """
    if encoding != "auto":
        # A forced encoding still honours a UTF-8 BOM: Excel adds one even when told "UTF-8".
        codec: str = "utf-8-sig" if encoding == "utf-8" else encoding
        return DecodedText(_strict(data, codec, filename), codec)
    for bom, codec in _BOMS:
        if data.startswith(bom):
            return DecodedText(_strict(data, codec, filename), codec)
    try:
        return DecodedText(data.decode("utf-8"), "utf-8")
    except UnicodeDecodeError:
        pass  # not UTF-8: the GB family is the expected alternative, tried next
    try:
        return DecodedText(data.decode("gb18030"), "gb18030")
    except UnicodeDecodeError as exc:
        raise MalformedMessage(
            f"{filename}: not UTF-8, GBK or GB18030 (byte offset {exc.start}: "
            f"{data[exc.start : exc.start + 4].hex(' ')}){_hint(data)}"
        ) from exc


def _strict(data: bytes, codec: str, filename: str) -> str:
    try:
        return data.decode(codec)
    except UnicodeDecodeError as exc:
        raise MalformedMessage(
            f"{filename}: does not decode as {codec} at byte offset {exc.start} "
            f"({data[exc.start : exc.start + 4].hex(' ')}){_hint(data)}"
        ) from exc


def _hint(data: bytes) -> str:
    best = charset_normalizer.from_bytes(data[:65536]).best()
    if best is None or best.encoding is None:
        return ""
    return f"; it may be {best.encoding}"
