"""Decoding export bytes to text: UTF-8 (with or without BOM), GBK, GB18030, Big5, UTF-16.

Hospital systems export whatever their Windows locale wrote: Excel's "CSV UTF-8" adds a BOM,
older HRP/SPD builds write GBK, newer ones GB18030, Hong Kong and Taiwan systems Big5 or
Big5-HKSCS, Excel's "Unicode text" UTF-16. Detection is deterministic on purpose (the same
bytes must always decode the same way, or re-translation would not be reproducible):

1. a byte-order mark decides (UTF-8 BOM -> `utf-8-sig`; UTF-16 BOMs, as Excel's "Unicode text");
2. UTF-16 without a BOM is told by its zero bytes: no 8-bit text export holds any, while each
   ASCII character (commas, digits, line ends) in UTF-16 has one, always on the same side;
3. bytes that decode as strict UTF-8 are UTF-8 (GBK text almost never does: `联通` is the classic
   exception Notepad got wrong, and Python's strict decoder rejects its overlong lead byte);
4. otherwise GB18030, a superset of GBK and GB2312, so one decoder covers all three;
5. and only if that text is *plausible*: Big5 bytes almost always decode as GB18030 too, into
   kana, box drawing, private-use characters and rare ideographs. When more than a tenth of the
   CJK-range characters are kana, boxes or private-use, or fewer than half are the common hanzi
   of GB2312 (or CJK punctuation), the file is refused.

Big5 and Big5-HKSCS are never guessed (their byte ranges overlap GBK's): a mapping names them
(`encoding: big5`). A named encoding is checked more leniently: only text with many kana, boxes
or private-use characters, or full of control characters, is refused (a GBK export written in
traditional characters is the mapping's call).

A refusal (MalformedMessage, so a dead letter) names the encodings tried, why each was refused,
and the likeliest encoding according to charset-normalizer. charset-normalizer never picks the
decoder, because its guesses can change between releases.
"""

from __future__ import annotations

import codecs
import io
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any, Literal

import charset_normalizer
from pydantic import BeforeValidator

from adapters.errors import MalformedMessage

if TYPE_CHECKING:
    from collections.abc import Iterator

ENCODINGS = ("auto", "utf-8", "gbk", "gb18030", "big5", "big5-hkscs", "utf-16", "utf-16-le", "utf-16-be")


def _normalise_choice(value: Any) -> Any:
    """`BIG5`, `big5hkscs`, `UTF_16LE`, `cp936`... -> the name the mapping documents."""
    if not isinstance(value, str):
        return value
    key = value.strip().lower().replace("_", "-")
    try:
        name = codecs.lookup(key).name if key != "auto" else "auto"
    except LookupError:
        return value  # the Literal then refuses it, listing the accepted names
    return {"big5hkscs": "big5-hkscs", "cp936": "gbk"}.get(name, name)


EncodingChoice = Annotated[
    Literal["auto", "utf-8", "gbk", "gb18030", "big5", "big5-hkscs", "utf-16", "utf-16-le", "utf-16-be"],
    BeforeValidator(_normalise_choice),
]

_BOMS: tuple[tuple[bytes, str], ...] = (
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
_GB_FAMILY = frozenset({"gbk", "gb18030"})
# Fewer CJK characters than this say too little to judge a decoding by.
_MIN_JUDGED = 8
# Big5 read as GBK: about 40 % kana, box drawing and private-use characters, a third common
# hanzi; a GBK export in traditional characters: none of the first, over half the second.
_MAX_BAD_SHARE = 0.1
_MIN_COMMON_SHARE = 0.5
_SAMPLE = 65536
_PIECE = 1 << 20  # bytes decoded at a time when a candidate codec is tried
# C0 controls and DEL, except tab, line ends, form feed and FS/GS/RS/US (GS travels in barcodes).
_CONTROLS = re.compile("[\x00-\x08\x0b\x0e-\x1b\x7f]")
# Runs of what is NOT judged (ASCII, Latin, Greek...), of what is not CJK punctuation, of what is
# not an ideograph: removed with one substitution each, the lengths left are the counts.
_NOT_JUDGED = re.compile("[^\u2500-\u257f\u2e80-\U0010ffff]+")
_CJK_PUNCTUATION = re.compile("[\u3000-\u303f\uff01-\uff5e]+")
# CJK unified ideographs: the main block, extension A, B-F (rare names), compatibility.
_NOT_IDEOGRAPHS = re.compile("[^\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0003134f]+")


@dataclass(frozen=True, slots=True)
class DecodedText:
    """Text of an export and the codec that produced it (`utf-8-sig`, `utf-8`, `gb18030`...)."""

    text: str
    encoding: str


def decode_export(data: bytes, *, filename: str, encoding: str = "auto") -> DecodedText:
    """Decode `data` as the mapping says (`auto` follows the module's order); never guesses silently.

    Raises MalformedMessage naming `filename`, the encodings tried and why each was refused (the
    first byte offset that does not decode, or what makes the text implausible).
    """
    codec = export_codec(data, filename=filename, encoding=encoding)
    return DecodedText(data.decode(codec), codec)


def export_codec(data: bytes, *, filename: str, encoding: str = "auto") -> str:
    """The codec `decode_export` decodes `data` with, found without holding the decoded text.

    Each candidate is tried by decoding the bytes a piece at a time (what is decoded is dropped
    at once) and judged on a sample of its text: a 100 MB GBK export is never held as a Python
    str (about 2 bytes a character), which `text_lines` then hands over a line at a time. Raises
    MalformedMessage as `decode_export` does.
    """
    if encoding != "auto":
        # A forced encoding still honours a UTF-8 BOM: Excel adds one even when told "UTF-8".
        codec = "utf-8-sig" if encoding == "utf-8" else encoding
        _strict(data, codec, filename)
        doubt = implausible(_sample(data, codec), codec, named=True)
        if doubt is not None:
            raise MalformedMessage(f"{filename}: decodes implausibly as {codec}: {doubt}{_hint(data)}")
        return codec
    for bom, codec in _BOMS:
        if data.startswith(bom):
            _strict(data, codec, filename)
            return codec
    utf16 = _utf16_without_bom(data)
    if utf16 is not None and _decodes(data, utf16):
        return utf16  # else zero bytes by chance: the ordinary order below decides
    tried: list[str] = []
    if _decodes(data, "utf-8"):
        return "utf-8"
    tried.append(f"utf-8: {_first_error(data, 'utf-8')}")
    if not _decodes(data, "gb18030"):
        offset = _first_error(data, "gb18030")
        tried.append(f"gb18030: {offset}")
        raise MalformedMessage(
            f"{filename}: not UTF-8, GBK or GB18030 ({offset}); tried {'; '.join(tried)}{_hint(data)}"
        )
    doubt = implausible(_sample(data, "gb18030"), "gb18030")
    if doubt is None:
        return "gb18030"
    tried.append(f"gb18030: {doubt}")
    raise MalformedMessage(
        f"{filename}: decodes implausibly under every allowed encoding (tried {'; '.join(tried)})"
        f"{_hint(data)}; name its encoding in the mapping (encoding: big5, big5-hkscs, gbk...)"
    )


def text_lines(data: bytes, codec: str) -> Iterator[str]:
    """The lines of `data` decoded with `codec` (from `export_codec`), one at a time, each with its
    ending (CR LF, CR or LF, as `io.StringIO(newline="")` yields them): the text is decoded as it
    is read, a few kB at a time, and never held whole. BytesIO shares the bytes, it does not copy."""
    return iter(io.TextIOWrapper(io.BytesIO(data), encoding=codec, newline=""))


def _decodes(data: bytes, codec: str) -> bool:
    """Whether `data` decodes strictly with `codec`; decoded a piece at a time, nothing kept."""
    decoder = codecs.getincrementaldecoder(codec)()
    view = memoryview(data)
    try:
        for start in range(0, len(view), _PIECE):
            decoder.decode(view[start : start + _PIECE])
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return False
    return True


def _first_error(data: bytes, codec: str) -> str:
    """Where `data` stops decoding with `codec` (it does: `_decodes` said so), as messages say it.

    Decoded whole, as before the decoding was streamed: only a refused file pays for it, and the
    offset is exactly the one a whole decoding names."""
    try:
        data.decode(codec)
    except UnicodeDecodeError as exc:
        return _offset(data, exc)
    return "no error"  # pragma: no cover - `_decodes` found one


def _sample(data: bytes, codec: str) -> str:
    """The first `_SAMPLE` characters of `data` decoded with `codec` (what `implausible` judges)."""
    decoder = codecs.getincrementaldecoder(codec)()
    # At most 4 bytes a character in any allowed codec: this many bytes hold the sample.
    text = decoder.decode(data[: 4 * _SAMPLE], final=len(data) <= 4 * _SAMPLE)
    return text[:_SAMPLE]


def implausible(text: str, codec: str, *, named: bool = False) -> str | None:
    """Why `text`, decoded with `codec`, is not what a Chinese export says; None when it is plausible.

    Judged on a sample: control characters (a UTF-16 file read as bytes), private-use characters
    (Big5 read as GBK lands many there), and for the GB family the share of CJK characters that
    are common hanzi (GB2312) or CJK punctuation; for Big5 any ideograph counts (traditional).
    `named`: the mapping named `codec`, so only what no real export holds refuses it (controls,
    kana, boxes, private-use characters): a GBK export in traditional characters is its call.
    """
    sample = text[:_SAMPLE]
    controls = len(_CONTROLS.findall(sample))
    if controls > max(2, len(sample) // 200):
        return f"{controls} control characters in the first {len(sample)}"
    if codec.startswith("utf"):
        return None  # valid UTF is strong evidence; only controls betray a wrong UTF-16 guess
    # Counted with substitutions and one encode (about 2 ms on a 50 kB GBK export): a Python loop
    # over its characters cost 24 ms, a hundred times the decoding itself.
    judged_text = _NOT_JUDGED.sub("", sample)  # ASCII, Latin, Greek (μ, Φ in specs) say nothing
    judged = len(judged_text)
    if judged < _MIN_JUDGED:
        return None
    punctuation = judged - len(_CJK_PUNCTUATION.sub("", judged_text))
    ideographs = _NOT_IDEOGRAPHS.sub("", judged_text)
    bad = judged - punctuation - len(ideographs)
    if bad > judged * _MAX_BAD_SHARE:
        return f"{bad} of {judged} CJK-range characters are kana, box drawing or private-use"
    if not named and codec in _GB_FAMILY:
        # GB2312 holds only common hanzi among ideographs (rows 16-87, two bytes each); GBK's
        # others are traditional or rare forms: a traditional name is fine, a file mostly of them
        # is Big5 read as GBK.
        good = punctuation + len(ideographs.encode("gb2312", errors="ignore")) // 2
        if good < judged * _MIN_COMMON_SHARE:
            return f"only {good} of {judged} CJK characters are common hanzi (GB2312) or CJK punctuation"
    return None


def _utf16_without_bom(data: bytes) -> str | None:
    """`utf-16-le` / `utf-16-be` when the zero bytes say so (see the module docstring), else None."""
    sample = data[: min(len(data), 4096) & ~1]
    pairs = len(sample) // 2
    if pairs < 2:
        return None
    # A text export in any 8-bit encoding holds no zero byte; UTF-16 holds one per ASCII
    # character (a comma, a digit, a line end), on one side of its pairs only.
    even = sample[0::2].count(0)
    odd = sample[1::2].count(0)
    # (An ideograph such as 一, U+4E00, puts a zero on the other side: a majority decides.)
    # At least a tenth of the pairs: a CSV's commas and line ends alone come to more, while a
    # stray NUL character in a UTF-8 export is one zero byte, on either side.
    enough = max(2, pairs // 10)
    if odd >= enough and odd >= 4 * even:
        return "utf-16-le"
    if even >= enough and even >= 4 * odd:
        return "utf-16-be"
    if odd + even < enough:
        return None
    # Zeros on both sides (many 一, U+4E00, beside the commas): the side that decodes into text
    # decides, the likelier first.
    for codec in ("utf-16-le", "utf-16-be") if odd >= even else ("utf-16-be", "utf-16-le"):
        try:
            text = data.decode(codec)
        except UnicodeDecodeError:
            continue
        if sum(ch.isprintable() or ch in "\r\n\t" for ch in text) >= 0.98 * len(text):
            return codec
    return None


def _strict(data: bytes, codec: str, filename: str) -> None:
    """Refuse `data` that does not decode with `codec`, naming the first byte that does not."""
    if _decodes(data, codec):
        return
    try:
        data.decode(codec)
    except UnicodeDecodeError as exc:
        raise MalformedMessage(
            f"{filename}: does not decode as {codec} at byte offset {exc.start} "
            f"({data[exc.start : exc.start + 4].hex(' ')}){_hint(data)}"
        ) from exc


def _offset(data: bytes, exc: UnicodeDecodeError) -> str:
    return f"byte offset {exc.start}: {data[exc.start : exc.start + 4].hex(' ')}"


def likeliest(data: bytes) -> str | None:
    """charset-normalizer's likeliest encoding of `data` (a sample of it), for messages only."""
    best = charset_normalizer.from_bytes(data[:_SAMPLE]).best()
    return None if best is None else best.encoding


def _hint(data: bytes) -> str:
    best = likeliest(data)
    return "" if best is None else f"; likeliest encoding: {best} (charset-normalizer)"
