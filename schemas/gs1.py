"""GS1 / UDI text -> what it says (GTIN, lot, expiry, serial): the one GS1 parser of the hub.

Parsing is biip's. Here because both adapters (SPD scans, HIS charges, FHIR UDI carriers) and
projections (the inventory trace reads codes people type) need it and may not import each other:
schemas is the one package both may import, and its `Barcode` is what a parse becomes.

Forms read, whatever reached the export or message:
- the human-readable form `(01)…(17)…(10)…(21)…` printed under a symbol, and `{01}…` as FHIR's
  carrierHRF and some UDI databases write it;
- element strings as scanned, with or without a symbology identifier (`]d2` DataMatrix, `]C1`
  GS1-128, `]Q3` QR), variable-length fields ended by GS (FNC1, `\\x1d`) or a printable stand-in
  (`<GS>`, `␝`, `↔` as HL7's examples print it...) where the export could not hold a control character;
- GS1 Digital Link URIs (`https://id.gs1.org/01/…/10/…?17=…`);
- a bare GTIN-8/12/13/14 (EAN/UPC).
Anything else (HIBCC, a vendor's private code, a typo) is never dropped: `read_gs1` returns the
text as written with `error` saying why; it never raises for content.

Fast paths: biip needs about 40 us for one HRI string and over 100 us for a scanned element
string; the common, fully valid case (AIs 01, 11, 17, 10, 21 only, a correct GTIN check digit,
real dates, GS1 character set 82) is read here in a few microseconds, as HRI and as an element
string (`]d2`/`]C1`/`]Q3`/`]e0` or no identifier, variable fields ended by GS or the end), and
everything else, every error included, goes to biip so the messages people see are biip's.
tests/unit/schemas/test_gs1.py checks with hypothesis that they agree.
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime
from functools import cache
from typing import TYPE_CHECKING, Literal

from schemas.inventory import Barcode

if TYPE_CHECKING:
    from collections.abc import Sequence

    import biip
    from biip import ParseConfig
    from biip.gs1_messages import GS1Message

Symbology = Literal["gs1", "gs1_digital_link", "hibcc", "unknown"]

GS = "\x1d"
DEFAULT_GS_ALIASES: tuple[str, ...] = ("<GS>", "{GS}", "[GS]", "\\x1d", "\\u001d", "␝", "↔")
HIBCC_ERROR = "HIBCC data (starts with '+') is not parsed; kept as written"
_BRACED_AI = re.compile(r"\{(\d{2,4})\}")
_SYMBOLOGY_ID = re.compile(r"^\][A-Za-z][0-9A-Za-z]")
_GTIN_DIGITS = re.compile(r"^\d{8}$|^\d{12,14}$")


@dataclass(frozen=True, slots=True)
class Gs1Reading:
    """What a code says. `error` None: fully read. Else why not; `raw` is always the text as written.

    `gtin` is AI (01) or the bare GTIN as written (kept even with a wrong check digit, which
    `error` then names); `gtin14` is it as a validated GTIN-14, None when it is not valid.
    `hri` is the canonical `(01)…(21)…` form of what was read (None when nothing was).
    """

    raw: str
    symbology: Symbology
    gtin: str | None = None
    gtin14: str | None = None
    lot: str | None = None
    expiry: date | None = None
    serial: str | None = None
    hri: str | None = None
    error: str | None = None

    @property
    def parse_error(self) -> str | None:
        """`error`, under the name `Barcode` gives it."""
        return self.error

    @property
    def key(self) -> str:
        """What identifies the code: the canonical HRI when GS1 was read, else the text as written."""
        return self.hri or self.raw

    def barcode(self, *, strict: bool = True) -> Barcode:
        """As a canonical `Barcode`.

        strict: everything read, or, when anything is wrong, only the raw text, flagged `unknown`.
        Not strict: whatever was read is kept beside the error (a GTIN with a wrong check digit,
        HIBCC's symbology), for sources whose people fix codes by looking at them.
        """
        if strict and self.error is not None:
            return Barcode(raw=self.raw, symbology="unknown", parse_error=self.error)
        return Barcode(
            raw=self.raw,
            symbology=self.symbology,
            gtin=self.gtin14 if strict else self.gtin,  # strict: only a valid GTIN, as GTIN-14
            lot=self.lot,
            expiry=self.expiry,
            serial=self.serial,
            parse_error=self.error,
        )


def read_gs1(text: str, *, gs_aliases: Sequence[str] = DEFAULT_GS_ALIASES) -> Gs1Reading:
    """Read one code (see the module docstring). Never raises; a blank `text` is an error reading."""
    raw = text.strip()  # str.strip() also drops a leading/trailing GS: it separates nothing there
    if not raw:
        return Gs1Reading(raw=text, symbology="unknown", error="empty")
    if raw.startswith("+"):
        # HIBCC (the other UDI issuing agency's syntax) is out of biip's scope: say so plainly.
        return Gs1Reading(raw=raw, symbology="hibcc", error=HIBCC_ERROR)
    if raw.startswith("]") and not _SYMBOLOGY_ID.match(raw):
        # biip indexes past the end of a truncated identifier (`]`, `]d`): refuse it here.
        reason = f"{raw[:3]!r} is not a complete symbology identifier (e.g. ]d2, ]C1)"
        return Gs1Reading(raw=raw, symbology="unknown", error=reason)
    value = raw
    if not value.lower().startswith(("http://", "https://", "]q")):
        for alias in gs_aliases:
            value = value.replace(alias, GS)
    try:
        if value.startswith(("(", "{")):
            hri = _BRACED_AI.sub(r"(\1)", value)
            return fast_hri(raw, hri) or _from_message(raw, _parse_hri(hri))
        return fast_element_string(raw, value) or _from_result(raw, _parse(value))
    except (_parse_error(), ValueError) as exc:  # evaluated only when something was raised
        return Gs1Reading(raw=raw, symbology="unknown", error=str(exc))


def parse_gtin(text: str) -> str:
    """`text` as a validated GTIN-14; raises ValueError naming what is wrong (length, check digit)."""
    value = text.strip()
    if not _GTIN_DIGITS.match(value):
        raise ValueError(f"{value!r} is not a GTIN (8, 12, 13 or 14 digits)")
    from biip.gtin import Gtin  # noqa: PLC0415  (on first use: see _config)

    try:
        return Gtin.parse(value).as_gtin_14()
    except _parse_error() as exc:
        raise ValueError(str(exc)) from exc


def gtin14(text: str | None) -> str | None:
    """`text` as a GTIN-14 when it is a valid GTIN (8, 12, 13 or 14 digits), else None."""
    try:
        return None if text is None else parse_gtin(text)
    except ValueError:
        return None


def looks_like_gtin(text: str) -> bool:
    """Whether `text` has a GTIN's shape (digits of a GTIN length), whatever its check digit."""
    return bool(_GTIN_DIGITS.match(text.strip()))


def as_hri(barcode: Barcode) -> str | None:
    """The GS1 human-readable form of what was found (`(01)…(17)…(10)…(21)…`), if a GTIN was."""
    if barcode.gtin is None:
        return None
    parts = [f"(01){barcode.gtin}"]
    if barcode.expiry is not None:
        parts.append(f"(17){barcode.expiry:%y%m%d}")
    if barcode.lot is not None:
        parts.append(f"(10){barcode.lot}")
    if barcode.serial is not None:
        parts.append(f"(21){barcode.serial}")
    return "".join(parts)


# biip is imported on first use: its GS1 prefix table costs ~16 MB and a quarter of a second at
# import, which processes that never read a code (a projector of asset events only) are spared.
@cache
def _config() -> ParseConfig:
    from biip import ParseConfig  # noqa: PLC0415

    return ParseConfig()


@cache
def _parse_error() -> type[Exception]:
    from biip import ParseError  # noqa: PLC0415

    return ParseError


def _parse(value: str) -> biip.ParseResult:
    import biip  # noqa: PLC0415

    return biip.parse(value, config=_config())


def _parse_hri(hri: str) -> GS1Message:
    from biip.gs1_messages import GS1Message  # noqa: PLC0415

    return GS1Message.parse_hri(hri, config=_config())


def _from_result(raw: str, result: biip.ParseResult) -> Gs1Reading:
    link = result.gs1_digital_link_uri
    if link is not None:
        return _from_message(raw, link.as_gs1_message(), symbology="gs1_digital_link")
    message = result.gs1_message
    has_ai_01 = message is not None and any(e.ai.ai == "01" for e in message.element_strings)
    # A valid bare GTIN (96385074) can also read as a GS1 message without AI 01 ((96)385074);
    # the GTIN is what a scanner of a product label means.
    if message is not None and message.element_strings and (has_ai_01 or result.gtin is None):
        return _from_message(raw, message)
    if result.gtin is not None:
        written = result.gtin.value
        return Gs1Reading(raw=raw, symbology="gs1", gtin=written, gtin14=result.gtin.as_gtin_14())
    errors = [
        e
        for e in (
            result.gs1_digital_link_uri_error if raw.lower().startswith(("http", "]q")) else None,
            result.gs1_message_error,
            result.gtin_error,
        )
        if e
    ]
    reason = errors[0] if errors else "not a GS1 barcode, GTIN or GS1 Digital Link"
    return Gs1Reading(raw=raw, symbology="unknown", error=reason)


def _from_message(raw: str, message: GS1Message, *, symbology: Symbology = "gs1") -> Gs1Reading:
    if not message.element_strings:
        return Gs1Reading(raw=raw, symbology="unknown", error="no GS1 element strings found")
    values: dict[str, str] = {}
    expiry: date | None = None
    valid_gtin: str | None = None
    error: str | None = None
    for element in message.element_strings:
        ai = element.ai.ai
        values.setdefault(ai, element.value)  # a repeated AI: the first one counts
        if ai == "17" and expiry is None:
            expiry = element.date
        elif ai == "01" and error is None:
            if element.gtin is None:
                error = element.gtin_error or f"AI (01) {element.value!r} is not a valid GTIN"
            else:
                valid_gtin = element.gtin.as_gtin_14()
    return Gs1Reading(
        raw=raw,
        symbology=symbology,
        gtin=values.get("01"),
        gtin14=valid_gtin,
        lot=values.get("10"),
        expiry=expiry,
        serial=values.get("21"),
        hri=message.as_hri(),
        error=error,
    )


_HRI_ELEMENT = re.compile(r"\((\d{2})\)([^()]+)")
_FAST_AIS = frozenset({"01", "10", "11", "17", "21"})
_CSET82 = re.compile(r"[!\"%&'*+,\-./0-9:;<=>?A-Z_a-z]{1,20}")
_GTIN14 = re.compile(r"\d{14}")
_YYMMDD = re.compile(r"\d{6}")


def fast_hri(raw: str, hri: str) -> Gs1Reading | None:
    """The reading of a fully valid HRI of AIs 01/11/17/10/21, or None to let biip decide."""
    values: dict[str, str] = {}
    pos = 0
    for match in _HRI_ELEMENT.finditer(hri):
        ai, value = match.groups()
        if match.start() != pos or ai not in _FAST_AIS or ai in values:
            return None
        values[ai] = value
        pos = match.end()
    if pos != len(hri) or not values:
        return None
    return _checked(raw, values, hri)


def _checked(raw: str, values: dict[str, str], hri: str) -> Gs1Reading | None:
    """The reading of AIs 01/11/17/10/21 when every value is valid, else None (biip explains)."""
    gtin = values.get("01")
    if gtin is not None and not _valid_gtin14(gtin):
        return None
    if any(ai in values and not _CSET82.fullmatch(values[ai]) for ai in ("10", "21")):
        return None
    expiry = _yymmdd(values["17"]) if "17" in values else None
    if ("17" in values and expiry is None) or ("11" in values and _yymmdd(values["11"]) is None):
        return None
    lot, serial = values.get("10"), values.get("21")
    return Gs1Reading(raw, "gs1", gtin=gtin, gtin14=gtin, lot=lot, expiry=expiry, serial=serial, hri=hri)


def _valid_gtin14(value: str) -> bool:
    if not _GTIN14.fullmatch(value):
        return False
    digits = [ord(c) - 48 for c in value]
    # GS1 mod 10: from the digit next to the check digit leftwards, weights 3, 1, 3, 1...
    total = 3 * sum(digits[-2::-2]) + sum(digits[-3::-2])
    return (10 - total % 10) % 10 == digits[-1]


def _yymmdd(value: str) -> date | None:
    """A GS1 date (General Specifications 7.12: century relative to this year, day 00 = month end)."""
    if not _YYMMDD.fullmatch(value):
        return None
    two_digit, month, day = int(value[:2]), int(value[2:4]), int(value[4:])
    current = datetime.now(tz=UTC).year
    century = current - current % 100
    difference = two_digit - current % 100
    if 51 <= difference <= 99:
        century -= 100
    elif -99 <= difference <= -50:
        century += 100
    year = century + two_digit
    if not 1 <= month <= 12:
        return None
    if day == 0:
        day = calendar.monthrange(year, month)[1]
    try:
        return date(year, month, day)
    except ValueError:
        return None


_FIXED = {"01": 14, "11": 6, "17": 6}
# GS1 symbology identifiers of symbols that carry element strings (DataMatrix, GS1-128, QR, DataBar).
_GS1_SYMBOLOGIES = ("]d2", "]C1", "]Q3", "]e0")


def fast_element_string(raw: str, value: str) -> Gs1Reading | None:
    """The reading of a fully valid element string of AIs 01/11/17/10/21 that holds AI (01)
    (so it is never a bare GTIN biip would read otherwise), or None to let biip decide.

    A variable-length value (10, 21) must end at a GS or the end, within 20 characters (its
    maximum, checked with the character set): then it is where biip ends it too. A GS after a
    fixed-length value is skipped, as biip skips it.
    """
    body = value[3:] if value.startswith(_GS1_SYMBOLOGIES) else value
    values = _elements(body)
    if values is None or "01" not in values:
        return None
    # In the order written, as biip's as_hri() gives it.
    return _checked(raw, values, "".join(f"({ai}){v}" for ai, v in values.items()))


def _elements(body: str) -> dict[str, str] | None:
    """AI -> value of an element string of the fast AIs, each once; None for anything else."""
    values: dict[str, str] = {}
    pos, end = 0, len(body)
    while pos < end:
        ai = body[pos : pos + 2]
        if ai not in _FAST_AIS or ai in values:
            return None
        start = pos + 2
        size = _FIXED.get(ai)
        if size is None:
            stop = body.find(GS, start)
            if stop < 0:
                stop = end
            elif stop + 1 == end:
                return None  # a GS with nothing after it
            pos = stop + 1
        else:
            stop = pos = start + size
            if stop > end or not body[start:stop].isdigit() or not body[start:stop].isascii():
                return None
            if body.startswith(GS, pos) and pos + 1 < end:
                pos += 1  # a GS after a fixed-length value is not needed, but scanners send it
        values[ai] = body[start:stop]
    return values
