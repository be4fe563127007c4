"""Scanned barcodes -> `Barcode`: GTIN, lot, expiry and serial, or the text kept verbatim and flagged.

Parsing is biip's. What a scan looks like when it reaches an export:

- GS1-128 / GS1 DataMatrix element strings, with or without a symbology identifier (`]C1`, `]d2`),
  variable-length fields ended by the GS control character (FNC1, `\\x1d`) - or by a printable
  stand-in (`<GS>`...) where the export could not hold a control character;
- the human-readable form `(01)…(17)…(10)…(21)…` printed under the symbol (and `{01}…`, as some
  UDI databases write it), which biip reads with `GS1Message.parse_hri`;
- GS1 Digital Link URIs (`https://id.gs1.org/01/…/10/…?17=…`) from QR codes;
- a bare GTIN-8/12/13/14 (EAN/UPC).

Anything else (HIBCC, a vendor's private code, a typo) is never dropped: it comes back with
symbology `unknown`, the text as written, and `parse_error` saying why. GTINs are returned as
GTIN-14 so a scan and an item master compare equal whichever length each wrote.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import biip
from biip import ParseConfig, ParseError
from biip.gs1_messages import GS1Message
from biip.gtin import Gtin

from schemas.inventory import Barcode

if TYPE_CHECKING:
    from collections.abc import Sequence

    from biip.gs1_element_strings import GS1ElementString

GS = "\x1d"
DEFAULT_GS_ALIASES: tuple[str, ...] = ("<GS>", "{GS}", "[GS]", "\\x1d", "\\u001d", "␝")
_CONFIG = ParseConfig()
_BRACED_AI = re.compile(r"\{(\d{2,4})\}")
_SYMBOLOGY_ID = re.compile(r"^\][A-Za-z][0-9A-Za-z]")
_GTIN_DIGITS = re.compile(r"^\d{8}$|^\d{12,14}$")


def normalise_gtin(text: str) -> str:
    """`text` as a validated GTIN-14; raises ValueError naming what is wrong (length, check digit)."""
    value = text.strip()
    if not _GTIN_DIGITS.match(value):
        raise ValueError(f"{value!r} is not a GTIN (8, 12, 13 or 14 digits)")
    try:
        return Gtin.parse(value).as_gtin_14()
    except ParseError as exc:
        raise ValueError(str(exc)) from exc


def looks_like_gtin(text: str) -> bool:
    """Whether `text` has a GTIN's shape (digits of a GTIN length), whatever its check digit."""
    return bool(_GTIN_DIGITS.match(text.strip()))


def parse_barcode(text: str, *, gs_aliases: Sequence[str] = DEFAULT_GS_ALIASES) -> Barcode:
    """Parse one scanned code. Never raises for content: unparseable text comes back flagged.

    Raises ValueError only for an empty `text` (there is no barcode to keep).
    """
    raw = text.strip()  # str.strip() also drops a leading/trailing GS: it separates nothing there
    if not raw:
        raise ValueError("empty barcode")
    if raw.startswith("]") and not _SYMBOLOGY_ID.match(raw):
        # biip indexes past the end of a truncated identifier (`]`, `]d`): refuse it here.
        return _unknown(raw, f"{raw[:3]!r} is not a complete symbology identifier (e.g. ]d2, ]C1)")
    if raw.startswith("+"):
        # HIBCC (the other UDI issuing agency's syntax) is out of biip's scope: say so plainly.
        return _unknown(raw, "HIBCC data (starts with '+') is not parsed; kept as written")
    value = raw
    if not value.lower().startswith(("http://", "https://", "]q")):
        for alias in gs_aliases:
            value = value.replace(alias, GS)
    try:
        if value.startswith(("(", "{")):
            return _from_message(raw, GS1Message.parse_hri(_BRACED_AI.sub(r"(\1)", value), config=_CONFIG))
        return _from_result(raw, biip.parse(value, config=_CONFIG))
    except (ParseError, ValueError) as exc:
        return _unknown(raw, str(exc))


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


def _from_result(raw: str, result: biip.ParseResult) -> Barcode:
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
        return Barcode(raw=raw, symbology="gs1", gtin=result.gtin.as_gtin_14())
    errors = [
        e
        for e in (
            result.gs1_digital_link_uri_error if raw.lower().startswith(("http", "]q")) else None,
            result.gs1_message_error,
            result.gtin_error,
        )
        if e
    ]
    return _unknown(raw, errors[0] if errors else "not a GS1 barcode, GTIN or GS1 Digital Link")


def _from_message(raw: str, message: GS1Message, *, symbology: str = "gs1") -> Barcode:
    fields: dict[str, object] = {}
    for element in message.element_strings:
        _take(element, fields)
    if not message.element_strings:
        return _unknown(raw, "no GS1 element strings found")
    problem = fields.pop("error", None)
    if problem is not None:
        return _unknown(raw, str(problem))
    return Barcode.model_validate({"raw": raw, "symbology": symbology, **fields})


def _take(element: GS1ElementString, fields: dict[str, object]) -> None:
    ai = element.ai.ai
    if ai == "01":
        if element.gtin is None:
            fields["error"] = element.gtin_error or f"AI (01) {element.value!r} is not a valid GTIN"
        else:
            fields["gtin"] = element.gtin.as_gtin_14()
    elif ai == "10":
        fields["lot"] = element.value
    elif ai == "17":
        fields["expiry"] = element.date
    elif ai == "21":
        fields["serial"] = element.value


def _unknown(raw: str, reason: str) -> Barcode:
    return Barcode(raw=raw, symbology="unknown", parse_error=reason)
