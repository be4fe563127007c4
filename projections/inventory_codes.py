"""Reading what a code names: a GS1 string, a UDI, a GS1 Digital Link, or a plain serial.

Parsing is biip's, as in the SPD adapter (projections may not import adapters, so the few lines
that matter are here). Forms read: the human-readable `(01)…(17)…(10)…(21)…` (and `{01}…`, as
some UDI databases write it), raw element strings with or without a symbology identifier
(`]d2`, `]C1`) and with the GS separator written as the control character or a printable
stand-in (`<GS>`), Digital Link URIs, and a bare GTIN. Anything else is not an error: the text
is still matched as a serial or a code seen before. GTINs come back as GTIN-14, so a scan and
an item master compare equal whichever length each wrote.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

import biip
from biip import ParseConfig, ParseError
from biip.gs1_messages import GS1Message
from biip.gtin import Gtin

if TYPE_CHECKING:
    from datetime import date

GS = "\x1d"
GS_ALIASES = ("<GS>", "{GS}", "[GS]", "\\x1d", "\\u001d", "␝")
_CONFIG = ParseConfig()
_BRACED_AI = re.compile(r"\{(\d{2,4})\}")
_SYMBOLOGY_ID = re.compile(r"^\][A-Za-z][0-9A-Za-z]")
_GTIN_DIGITS = re.compile(r"^\d{8}$|^\d{12,14}$")


@dataclass(frozen=True, slots=True)
class ParsedCode:
    """What a GS1 code says: GTIN-14, lot, serial, expiry (each None when absent)."""

    gtin: str | None = None
    lot: str | None = None
    serial: str | None = None
    expiry: date | None = None

    @property
    def empty(self) -> bool:
        return self.gtin is None and self.lot is None and self.serial is None


NOTHING = ParsedCode()


def gtin14(text: str | None) -> str | None:
    """`text` as a GTIN-14 when it is a valid GTIN (8, 12, 13 or 14 digits), else None."""
    if text is None:
        return None
    value = text.strip()
    if not _GTIN_DIGITS.match(value):
        return None
    try:
        return Gtin.parse(value).as_gtin_14()
    except ParseError:
        return None


def parse_code(text: str) -> ParsedCode:
    """Parse a GS1 code; NOTHING when `text` is not one (never raises for content)."""
    value = text.strip()
    if not value or (value.startswith("]") and not _SYMBOLOGY_ID.match(value)) or value.startswith("+"):
        # A truncated symbology identifier crashes biip; '+' is HIBCC, which biip does not read.
        return NOTHING
    if not value.lower().startswith(("http://", "https://", "]q")):
        for alias in GS_ALIASES:
            value = value.replace(alias, GS)
    try:
        if value.startswith(("(", "{")):
            return _from_message(GS1Message.parse_hri(_BRACED_AI.sub(r"(\1)", value), config=_CONFIG))
        result = biip.parse(value, config=_CONFIG)
    except (ParseError, ValueError):
        return NOTHING
    return _from_result(result)


def _from_result(result: biip.ParseResult) -> ParsedCode:
    if result.gs1_digital_link_uri is not None:
        return _from_message(result.gs1_digital_link_uri.as_gs1_message())
    message = result.gs1_message
    if message is not None and any(e.ai.ai == "01" for e in message.element_strings):
        return _from_message(message)
    if result.gtin is not None:
        return ParsedCode(gtin=result.gtin.as_gtin_14())
    return _from_message(message) if message is not None else NOTHING


def _from_message(message: GS1Message) -> ParsedCode:
    gtin = lot = serial = None
    expiry: date | None = None
    for element in message.element_strings:
        ai = element.ai.ai
        if ai == "01" and element.gtin is not None:
            gtin = element.gtin.as_gtin_14()
        elif ai == "10":
            lot = element.value
        elif ai == "17":
            expiry = element.date
        elif ai == "21":
            serial = element.value
    return ParsedCode(gtin=gtin, lot=lot, serial=serial, expiry=expiry)
