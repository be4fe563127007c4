"""Reading what a code names: a GS1 string, a UDI, a GS1 Digital Link, or a plain serial.

The parsing is the hub's one GS1 parser (schemas.gs1), which the adapters use too, so a code
reads the same at ingest and at trace time. What the trace needs from it: GTIN-14, lot, serial
and expiry of anything GS1 (a GTIN with a wrong check digit is not trusted, the rest still is);
anything else is not an error here: the text is still matched as a serial or a code seen before.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from schemas.gs1 import gtin14, read_gs1

if TYPE_CHECKING:
    from datetime import date

__all__ = ["NOTHING", "ParsedCode", "gtin14", "parse_code"]


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


def parse_code(text: str) -> ParsedCode:
    """Parse a GS1 code; NOTHING when `text` is not one (never raises for content)."""
    reading = read_gs1(text)
    if reading.symbology in {"unknown", "hibcc"}:
        return NOTHING
    return ParsedCode(gtin=reading.gtin14, lot=reading.lot, serial=reading.serial, expiry=reading.expiry)
