"""Reading UDI carriers and scanned codes: GTIN, lot, expiry and serial out of GS1 strings.

The parsing is the hub's one GS1 parser (schemas.gs1: HRI with `()` or the `{01}…` brace form of
the FDA examples HL7 copied, element strings with FNC1/`]d2` and GS separators or `↔`, which HL7's
examples print in place of GS, GS1 Digital Link URIs, a bare GTIN). FHIR's rule on top: the GS1
HRI is the carrier's key (the `udi` identifier); HIBCC carriers (`+H123…`) and anything that
cannot be parsed are kept verbatim and flagged, never dropped.
"""

from __future__ import annotations

import binascii
from base64 import b64decode
from functools import lru_cache

from schemas.gs1 import Gs1Reading, read_gs1

UdiReading = Gs1Reading  # `key` is the `udi` identifier; `barcode(strict=False)` keeps what was read


@lru_cache(maxsize=4096)  # pure and immutable; the same carriers recur across re-sent devices
def read_udi(text: str) -> UdiReading:
    """Parse one UDI/barcode string; never raises (an unparsable one comes back flagged)."""
    return read_gs1(text)


def read_aidc(value: bytes | str) -> UdiReading:
    """A carrierAIDC: base64Binary in FHIR (fhir.resources decodes it to bytes)."""
    if isinstance(value, str):
        try:
            decoded = b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            return UdiReading(raw=value, symbology="unknown", error="carrierAIDC is not base64")
    else:
        decoded = value
    return read_udi(decoded.decode("utf-8", errors="replace"))
