"""UDI / barcode text from HL7 fields -> `Barcode`, parsed with biip where it can be.

HIS systems pass on what the scanner read, in whatever form: the human-readable GS1 form
`(01)…(17)…(10)…(21)…` (also with `{}` as in FHIR's carrierHRF), raw GS1 element strings with
or without a symbology identifier and GS separators, GS1 Digital Link URIs, HIBCC (`+…`) or a
bare GTIN. What biip parses yields GTIN, lot, expiry and serial; anything else is kept verbatim
with `parse_error` saying why, never dropped. Each form goes straight to the biip parser for it:
`biip.parse` tries every symbology in turn and costs twice as much on the hot path.

Fast path: biip needs about 40 us for one `(01)…(17)…(10)…(21)…` string, which alone would hold
a DFT with three implants to a few thousand messages/s. The common, fully valid case (AIs 01,
11, 17, 10, 21 only, a correct GTIN check digit, real dates, GS1 character set 82) is read here
in a few microseconds; anything else, including every error, goes to biip, so the messages
people see are biip's. tests/unit/adapters/test_his_barcode.py checks with hypothesis that the
fast path and biip agree. Two-digit years follow GS1 General Specifications 7.12 relative to the
current year, exactly as biip does.
"""

from __future__ import annotations

import calendar
import re
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Literal

import biip
from biip.gs1_digital_link_uris import GS1DigitalLinkURI
from biip.gs1_messages import GS1Message

from schemas.inventory import Barcode

if TYPE_CHECKING:
    from collections.abc import Iterable

    from biip.gs1_element_strings import GS1ElementString

Symbology = Literal["gs1", "gs1_digital_link", "hibcc", "unknown"]


def parse_barcode(text: str) -> Barcode:
    """Parse one scanned code. `text` must not be blank (the caller checks)."""
    raw = text.strip()
    if raw.startswith("+"):
        return Barcode(
            raw=raw, symbology="hibcc", parse_error="HIBCC codes are kept verbatim: biip does not parse them"
        )
    try:
        return _parse_gs1(raw)
    except biip.ParseError as exc:
        return Barcode(raw=raw, symbology="unknown", parse_error=str(exc))


def _parse_gs1(raw: str) -> Barcode:
    if raw.startswith(("(", "{")):
        hri = raw.replace("{", "(").replace("}", ")")
        fast = fast_hri(raw, hri)
        if fast is not None:
            return fast
        return _from_elements(raw, "gs1", GS1Message.parse_hri(hri).element_strings)
    if raw.lower().startswith(("http://", "https://")):
        return _from_elements(raw, "gs1_digital_link", GS1DigitalLinkURI.parse(raw).element_strings)
    result = biip.parse(raw)
    if result.gs1_message is not None:
        return _from_elements(raw, "gs1", result.gs1_message.element_strings)
    if result.gtin is not None:
        return Barcode(raw=raw, symbology="gs1", gtin=result.gtin.value)
    error = result.gs1_message_error or result.gtin_error or "not a GS1 code"
    return Barcode(raw=raw, symbology="unknown", parse_error=error)


def _from_elements(raw: str, symbology: Symbology, elements: Iterable[GS1ElementString]) -> Barcode:
    values: dict[str, str] = {}
    expiry: date | None = None
    problems: list[str] = []
    for element in elements:
        ai = element.ai.ai
        values.setdefault(ai, element.value)
        if ai == "17":
            expiry = element.date
        if ai == "01" and element.gtin_error:
            problems.append(element.gtin_error)
    return Barcode(
        raw=raw,
        symbology=symbology,
        gtin=values.get("01"),
        lot=values.get("10"),
        expiry=expiry,
        serial=values.get("21"),
        parse_error="; ".join(problems) or None,
    )


_HRI_ELEMENT = re.compile(r"\((\d{2})\)([^()]+)")
_FAST_AIS = frozenset({"01", "10", "11", "17", "21"})
_CSET82 = re.compile(r"[!\"%&'*+,\-./0-9:;<=>?A-Z_a-z]{1,20}")
_GTIN = re.compile(r"\d{14}")
_YYMMDD = re.compile(r"\d{6}")


def fast_hri(raw: str, hri: str) -> Barcode | None:
    """The Barcode for a fully valid HRI of AIs 01/11/17/10/21, or None to let biip decide."""
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
    gtin = values.get("01")
    if gtin is not None and not _valid_gtin(gtin):
        return None
    if any(ai in values and not _CSET82.fullmatch(values[ai]) for ai in ("10", "21")):
        return None
    expiry = _yymmdd(values["17"]) if "17" in values else None
    if ("17" in values and expiry is None) or ("11" in values and _yymmdd(values["11"]) is None):
        return None
    return Barcode(
        raw=raw, symbology="gs1", gtin=gtin, lot=values.get("10"), expiry=expiry, serial=values.get("21")
    )


def _valid_gtin(value: str) -> bool:
    if not _GTIN.fullmatch(value):
        return False
    digits = [ord(c) - 48 for c in value]
    # GS1 mod 10: from the digit next to the check digit leftwards, weights 3, 1, 3, 1...
    total = 3 * sum(digits[-2::-2]) + sum(digits[-3::-2])
    return (10 - total % 10) % 10 == digits[-1]


def _yymmdd(value: str) -> date | None:
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
