"""Reading UDI carriers and scanned codes: GTIN, lot, expiry and serial out of GS1 strings.

The parsing is the hub's one GS1 parser (schemas.gs1: HRI with `()` or the `{01}…` brace form of
the FDA examples HL7 copied, element strings with FNC1/`]d2` and GS separators or `↔`, which HL7's
examples print in place of GS, GS1 Digital Link URIs, a bare GTIN). FHIR's rule on top: the GS1
HRI is the carrier's key (the `udi` identifier); HIBCC carriers (`+H123…`) and anything that
cannot be parsed are kept verbatim, HIBCC unflagged (it is a valid UDI, only not GS1).
"""

from __future__ import annotations

import binascii
from base64 import b64decode
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING

from schemas.gs1 import Symbology, read_gs1
from schemas.inventory import Barcode

if TYPE_CHECKING:
    from datetime import date


@dataclass(frozen=True, slots=True)
class UdiReading:
    """What a UDI or barcode string holds. `hri` is the canonical `(01)…(21)…` form for GS1."""

    raw: str
    symbology: Symbology
    hri: str | None = None
    gtin: str | None = None
    lot: str | None = None
    expiry: date | None = None
    serial: str | None = None
    parse_error: str | None = None

    @property
    def key(self) -> str:
        """The form used as the `udi` identifier: canonical for GS1, verbatim otherwise."""
        return self.hri or self.raw

    def barcode(self) -> Barcode:
        return Barcode(
            raw=self.raw,
            symbology=self.symbology,
            gtin=self.gtin,
            lot=self.lot,
            expiry=self.expiry,
            serial=self.serial,
            parse_error=self.parse_error,
        )


@lru_cache(maxsize=4096)  # pure and immutable; the same carriers recur across re-sent devices
def read_udi(text: str) -> UdiReading:
    """Parse one UDI/barcode string; never raises (an unparsable one comes back flagged)."""
    reading = read_gs1(text)
    if reading.symbology == "hibcc":
        return UdiReading(raw=reading.raw, symbology="hibcc")
    return UdiReading(
        raw=reading.raw,
        symbology=reading.symbology,
        hri=reading.hri,
        gtin=reading.gtin,
        lot=reading.lot,
        expiry=reading.expiry,
        serial=reading.serial,
        parse_error=reading.error,
    )


def read_aidc(value: bytes | str) -> UdiReading:
    """A carrierAIDC: base64Binary in FHIR (fhir.resources decodes it to bytes)."""
    if isinstance(value, str):
        try:
            decoded = b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            return UdiReading(raw=value, symbology="unknown", parse_error="carrierAIDC is not base64")
    else:
        decoded = value
    return read_udi(decoded.decode("utf-8", errors="replace"))
