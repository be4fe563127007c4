"""Scanned barcodes in SPD exports -> `Barcode`: GTIN-14, lot, expiry and serial, or the text flagged.

The parsing is the hub's one GS1 parser (schemas.gs1: every GS1 form, GS stand-ins, Digital
Link, a bare GTIN). SPD's rule on top: a code with anything wrong (a GTIN with a wrong check
digit, HIBCC, a private code) is not half-trusted: it comes back with symbology `unknown`, the
text as written and `parse_error` saying why. Each site may list its own printable GS stand-ins.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from schemas.gs1 import DEFAULT_GS_ALIASES, as_hri, looks_like_gtin, read_gs1
from schemas.gs1 import parse_gtin as normalise_gtin

if TYPE_CHECKING:
    from collections.abc import Sequence

    from schemas.inventory import Barcode

__all__ = ["DEFAULT_GS_ALIASES", "as_hri", "looks_like_gtin", "normalise_gtin", "parse_barcode"]


def parse_barcode(text: str, *, gs_aliases: Sequence[str] = DEFAULT_GS_ALIASES) -> Barcode:
    """Parse one scanned code. Never raises for content: unparseable text comes back flagged.

    Raises ValueError only for an empty `text` (there is no barcode to keep).
    """
    if not text.strip():
        raise ValueError("empty barcode")
    return read_gs1(text, gs_aliases=gs_aliases).barcode()
