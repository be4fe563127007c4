"""The shape every tabular reader returns: rows of cell texts with the line a person would see.

A `GridRow` is `(line, cells)`: `line` is the 1-based line of a CSV record's first physical
line (as an editor numbers it) or the 1-based row number of an XLSX sheet (as Excel shows it).
Cells are text; typed spreadsheet values are rendered to text by the XLSX reader so that one set
of value parsers serves both formats.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

GridRow = tuple[int, tuple[str, ...]]


@dataclass(frozen=True, slots=True)
class ReadLimits:
    """Bounds that keep a hostile or broken export from exhausting memory.

    The zip figures apply to XLSX (a zip of XML) and are checked before any member is inflated.
    """

    max_rows: int = 200_000
    max_cols: int = 256
    max_cell_chars: int = 32_767  # Excel's own cell limit; a longer CSV field is not a ledger
    max_zip_members: int = 2_000
    max_uncompressed_bytes: int = 256 * 1024 * 1024
    max_compression_ratio: float = 200.0


@dataclass(frozen=True, slots=True)
class Grid:
    """Rows of a CSV file or a sheet, with how they were read (for reports and dry runs)."""

    rows: tuple[GridRow, ...]
    format: Literal["csv", "xlsx"]
    encoding: str | None = None  # CSV only
    delimiter: str | None = None  # CSV only
    sheet: str | None = None  # XLSX only
