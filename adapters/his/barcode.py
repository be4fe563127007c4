"""UDI / barcode text from HL7 fields -> `Barcode`, read by the hub's one GS1 parser (schemas.gs1).

HIS systems pass on what the scanner read, in whatever form (HRI with `()` or `{}`, element
strings with or without a symbology identifier, GS1 Digital Link, HIBCC, a bare GTIN). HIS's rule
on top of the parser: what was read is kept even when part of it is wrong - a GTIN with a wrong
check digit stays on the charge, with `parse_error` saying so - and HIBCC keeps its symbology;
anything unreadable is kept verbatim with the reason, never dropped.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from schemas.gs1 import read_gs1

if TYPE_CHECKING:
    from schemas.inventory import Barcode


def parse_barcode(text: str) -> Barcode:
    """Parse one scanned code. `text` must not be blank (the caller checks)."""
    return read_gs1(text).barcode(strict=False)
