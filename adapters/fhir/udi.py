"""Reading UDI carriers and scanned codes with biip: GTIN, lot, expiry and serial out of GS1 strings.

Forms read: the human-readable `(01)…(17)…(10)…(21)…` (and the `{01}…` brace form of the FDA
examples HL7 copied), element strings with FNC1/`]d2` and GS separators (and `↔`, which HL7's
examples print in place of GS), plain element strings and GS1 Digital Link URIs. HIBCC carriers
(`+H123…`) and anything biip cannot parse are kept verbatim and flagged, never dropped.
"""

from __future__ import annotations

import binascii
import re
from base64 import b64decode
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Literal

from biip import BiipException, ParseConfig, ParseResult
from biip import parse as biip_parse
from biip.gs1_messages import GS1Message

from schemas.inventory import Barcode

if TYPE_CHECKING:
    from datetime import date

Symbology = Literal["gs1", "gs1_digital_link", "hibcc", "unknown"]

_BRACES = re.compile(r"\{(\d{2,4})\}")
_CONFIG = ParseConfig(separator_chars=("\x1d", "\u2194"))


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
    raw = text.strip()
    if not raw:
        return UdiReading(raw=text, symbology="unknown", parse_error="empty")
    if raw.startswith("+"):
        return UdiReading(raw=raw, symbology="hibcc")
    hri_text = _BRACES.sub(r"(\1)", raw) if raw.startswith("{") else raw
    try:
        if hri_text.startswith("("):
            return _from_message(raw, GS1Message.parse_hri(hri_text), "gs1")
        return _from_result(raw, biip_parse(raw, config=_CONFIG))
    except BiipException as exc:
        return UdiReading(raw=raw, symbology="unknown", parse_error=str(exc))


def _from_result(raw: str, result: ParseResult) -> UdiReading:
    if result.gs1_digital_link_uri is not None:
        return _from_message(raw, result.gs1_digital_link_uri.as_gs1_message(), "gs1_digital_link")
    if result.gs1_message is not None:
        return _from_message(raw, result.gs1_message, "gs1")
    if result.gtin is not None:
        return UdiReading(raw=raw, symbology="gs1", gtin=result.gtin.value)
    error = result.gs1_message_error or result.gtin_error or "not a GS1 element string"
    return UdiReading(raw=raw, symbology="unknown", parse_error=error)


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


def _from_message(raw: str, message: GS1Message, symbology: Symbology) -> UdiReading:
    values: dict[str, str] = {}
    expiry: date | None = None
    for element in message.element_strings:
        values.setdefault(element.ai.ai, element.value)
        if element.ai.ai == "17" and element.date is not None:
            expiry = element.date
    return UdiReading(
        raw=raw,
        symbology=symbology,
        hri=message.as_hri(),
        gtin=values.get("01"),
        lot=values.get("10"),
        expiry=expiry,
        serial=values.get("21"),
    )
