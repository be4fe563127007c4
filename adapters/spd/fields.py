"""SPD row fields beyond the shared reader: item code, places, serial lists, barcodes and GTINs.

Places: a row names a store (库房) or a department (科室), resolved through the mapping's code list
(which holds the central store), plus an optional bin or spot text (货位, 手术间, 床位). They become
`LocationRef(department=DeptRef(code, name), location=<that text>)`.

Barcodes: every scan column (`barcode`, and `udi`, which vendors title UDI or 追溯码) is parsed by
barcode.py, in every GS1 form (HRI, raw with GS, DataMatrix with or without FNC1, Digital Link),
on every document kind. What a scan says about lot, expiry, serial or GTIN must agree with
the row's own columns; a contradiction is a row problem naming both columns and both values (a
label from another lot stuck on the box is exactly what traceability must catch). A barcode that
cannot be parsed is not a problem: it is kept as written and flagged in the event.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from adapters._files.rows import RowReader
from adapters._files.values import clean_text
from adapters.spd.barcode import looks_like_gtin, normalise_gtin, parse_barcode
from schemas._base import LocationRef

# Columns holding a scanned code (a GS1 barcode or a UDI carrier), read alike on every document.
SCAN_FIELDS = ("barcode", "udi")

if TYPE_CHECKING:
    from collections.abc import Sequence
    from datetime import date

    from adapters._files.sheet import Record, Sheet
    from adapters.spd.mapping import SpdMapping
    from schemas.inventory import Barcode


class SpdReader(RowReader):
    """Typed access to an SPD row; problems accumulate in `problems` (see RowReader)."""

    mapping: SpdMapping

    def __init__(self, sheet: Sheet, record: Record, mapping: SpdMapping) -> None:
        super().__init__(sheet, record, mapping)
        self._separators = re.compile("|".join(re.escape(s) for s in mapping.serial_separators))

    def item_code(self) -> str | None:
        return self.text("item_code", required=True)

    def place(
        self, fields: Sequence[str], *, default_store: bool, bin_here: bool = True, correctable: bool = False
    ) -> LocationRef | None:
        """The first of `fields` the row fills, else the mapping's default store when allowed.

        `bin_here`: whether the row's bin/spot column (货位...) describes this place.
        `correctable`: whether a retry can move the row's event from an unknown place to the right
        one (consumptions: `inventory.consumption_corrected`). Only such a row is kept at a place
        the mapping does not know (`strict_departments: false`, with a note); any other fails.
        """
        for field in fields:
            text = self.text(field)
            if text is not None:
                return self._location(field, text, bin_here=bin_here, correctable=correctable)
        if default_store and self.mapping.default_store is not None:
            return self._location(
                fields[0], self.mapping.default_store, bin_here=bin_here, correctable=correctable
            )
        title = " / ".join(self.title(f) for f in fields)
        self.problem(fields[0], "missing_required", f"{title} is empty")
        return None

    def _location(self, field: str, text: str, *, bin_here: bool, correctable: bool) -> LocationRef | None:
        if not (correctable or self.mapping.strict_departments) and self.mapping.department(text) is None:
            self.problem(
                field,
                "unknown_department",
                f"{self.title(field)}: {text!r} is not in the mapping's departments (add it, or an alias, "
                "under departments); only a consumption is kept at an unknown place (a retry corrects "
                "consumptions, not receipts, transfers, counts, disposals or thresholds)",
            )
            return None
        department = self.department(field, text=text)
        if department is None:
            return None
        return LocationRef(department=department, location=self.text("bin") if bin_here else None)

    def serials(self) -> list[str]:
        """The serial numbers in the row's serial cell, split on the mapping's separators."""
        value = clean_text(self.raw("serials"))
        if not value:
            return []
        return [s.strip() for s in self._separators.split(value) if s.strip()]

    def gtin(self, field: str) -> str | None:
        """A GTIN column as GTIN-14; a malformed one (length, check digit) is a problem."""
        value = self.text(field)
        if value is None:
            return None
        try:
            return normalise_gtin(value)
        except ValueError as exc:
            self.problem(field, "invalid_gtin", f"{self.title(field)}: {exc}")
            return None

    def udi_di(self) -> tuple[str | None, str | None]:
        """The UDI-DI as written and, when it is a GS1 DI, the GTIN-14 it is.

        UDI-DIs issued by other agencies (not digits of a GTIN length) are kept as text.
        """
        value = self.text("udi_di")
        if value is None or not looks_like_gtin(value):
            return value, None
        return value, self.gtin("udi_di")

    def scans(self) -> list[tuple[str, Barcode]]:
        """Every scan column the row fills (`barcode`, `udi`), each parsed as GS1, in that order."""
        out = []
        for field in SCAN_FIELDS:
            raw = self.raw(field)
            if raw.strip():
                out.append((field, parse_barcode(raw, gs_aliases=self.mapping.barcode_gs_aliases)))
        return out

    def barcode(
        self,
        *,
        lot: str | None = None,
        expiry: date | None = None,
        serials: Sequence[str] = (),
        gtin: str | None = None,
    ) -> Barcode | None:
        """The row's scan: the first scan column that parses as GS1, else the first as written.

        Every scan column is checked against the row's lot, expiry, serials and GTIN, and against
        the scan kept: a contradiction is a problem on the column that holds it.
        """
        scans = self.scans()
        if not scans:
            return None
        kept = next((scan for scan in scans if scan[1].parse_error is None), scans[0])
        for field, scan in scans:
            self.check_scan(scan, field=field, lot=lot, expiry=expiry, serials=serials, gtin=gtin)
            if scan is not kept[1]:
                other = kept[1]
                self.check_scan(
                    scan,
                    field=field,
                    lot=other.lot,
                    expiry=other.expiry,
                    serials=[other.serial] if other.serial else [],
                    gtin=other.gtin,
                    against=kept[0],
                )
        return kept[1]

    def check_scan(
        self,
        barcode: Barcode | None,
        *,
        lot: str | None,
        expiry: date | None,
        serials: Sequence[str],
        gtin: str | None = None,
        field: str = "barcode",
        against: str | None = None,
    ) -> None:
        """Add a problem for each of lot, expiry, serial, GTIN the scan and the row disagree on.

        `against`: the other scan column the values come from, when they are not the row's own.
        """
        if barcode is None or barcode.parse_error is not None:
            return
        said = f"{self.title(field)} {barcode.raw!r}"

        def title(name: str) -> str:
            return f"{self.title(against)}'s {name}" if against else self.title(name)

        if barcode.lot is not None and lot is not None and barcode.lot != lot:
            self._contradiction(field, f"{said} has lot {barcode.lot!r} but {title('lot')} is {lot!r}")
        if barcode.expiry is not None and expiry is not None and barcode.expiry != expiry:
            self._contradiction(
                field,
                f"{said} has expiry {barcode.expiry.isoformat()} "
                f"but {title('expiry')} is {expiry.isoformat()}",
            )
        if barcode.serial is not None and serials and barcode.serial not in serials:
            self._contradiction(
                field,
                f"{said} has serial {barcode.serial!r} but {title('serials')} is {'; '.join(serials)!r}",
            )
        if barcode.gtin is not None and gtin is not None and barcode.gtin != gtin:
            where = f"{self.title(against)}'s" if against else "the row's"
            self._contradiction(field, f"{said} has GTIN {barcode.gtin} but {where} GTIN is {gtin}")

    def _contradiction(self, field: str, reason: str) -> None:
        # Reported on the scan column: it is the one to look at, and the reason names the other.
        self.problem(field, "barcode_mismatch", reason)
