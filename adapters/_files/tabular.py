"""One entry point for tabular exports: bytes -> Grid, whatever the format.

The format is decided by the bytes, not the file name: people rename `.xlsx` to `.csv` (and the
reverse) when mailing exports around. A zip signature means XLSX; an OLE2 signature means the
old binary XLS, which is refused with what to do instead; anything else is decoded as CSV text.

`stream_grid` hands the rows over one at a time (a file is translated in chunks, never held as
rows whole); `footprint` says, before anything is read, how much memory reading a file will hold.
"""

from __future__ import annotations

import io
import zipfile
from dataclasses import replace
from itertools import islice
from typing import TYPE_CHECKING

from adapters._files.csv_reader import SNIFF_LINES, check_csv_lines, iter_csv_lines, sniff_delimiter
from adapters._files.encoding import EncodingChoice, export_codec, text_lines
from adapters._files.grid import Grid, ReadLimits
from adapters._files.xlsx_reader import iter_xlsx_rows
from adapters.errors import MalformedMessage

if TYPE_CHECKING:
    from collections.abc import Iterator

    from adapters._files.grid import GridRow

_ZIP_MAGIC = b"PK\x03\x04"
_OLE2_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
# Held while a CSV is read: its bytes (the text is decoded a line at a time, never whole), and
# what a source keeps per file to find repeated keys (a ledger's card numbers: ~100 bytes a row
# of ~170), counted as as much again.
_CSV_FACTOR = 2
# openpyxl (read_only) keeps every shared string as a Python str: ~50-75 bytes of object header
# each beside the text, against ~16 bytes of <si><t> markup in the XML.
_SHARED_STRINGS_FACTOR = 4


def read_grid(
    data: bytes,
    *,
    filename: str,
    encoding: EncodingChoice = "auto",
    sheet: str | None = None,
    limits: ReadLimits | None = None,
) -> Grid:
    """Read `data` (CSV or XLSX) into rows; raise MalformedMessage naming `filename` if it cannot."""
    grid, rows = stream_grid(data, filename=filename, encoding=encoding, sheet=sheet, limits=limits)
    return replace(grid, rows=tuple(rows))


def stream_grid(
    data: bytes,
    *,
    filename: str,
    encoding: EncodingChoice = "auto",
    sheet: str | None = None,
    limits: ReadLimits | None = None,
) -> tuple[Grid, Iterator[GridRow]]:
    """How `data` is read (a Grid without rows) and its rows, parsed as they are taken.

    Raises MalformedMessage for a file that cannot be opened. A CSV is checked whole first (a
    fast pass of the csv module): a limit passed on its last line refuses the file before any
    row is handed over, so no part of a refused file is ever published. An XLSX sheet is parsed
    only once (openpyxl is slow); a sheet broken below its first rows fails while being read.
    """
    limits = limits or ReadLimits()
    if not data or data.isspace():  # not data.strip(): that copies a whole 100 MB file
        raise MalformedMessage(f"{filename}: the file is empty")
    if data.startswith(_ZIP_MAGIC):
        title, xlsx_rows = iter_xlsx_rows(data, filename=filename, sheet=sheet, limits=limits)
        return Grid(rows=(), format="xlsx", sheet=title), xlsx_rows
    if data.startswith(_OLE2_MAGIC):
        raise MalformedMessage(f"{filename}: old binary XLS is not supported; save it as .xlsx or CSV")
    # The text is decoded as it is read, for each pass: never held whole beside the bytes.
    codec = export_codec(data, filename=filename, encoding=encoding)
    delimiter = sniff_delimiter("".join(islice(text_lines(data, codec), SNIFF_LINES)))
    # The whole file is checked before any row is handed over (a cheaper loop than reading rows).
    check_csv_lines(text_lines(data, codec), filename=filename, delimiter=delimiter, limits=limits)
    rows = iter_csv_lines(text_lines(data, codec), filename=filename, delimiter=delimiter, limits=limits)
    return Grid(rows=(), format="csv", encoding=codec, delimiter=delimiter), rows


def footprint(data: bytes) -> int:
    """Bytes that reading `data` row by row holds at its peak, estimated from the file alone.

    Streaming bounds the rows in memory, not what a format needs whole: a CSV's decoded text, an
    XLSX's shared-string table. Cheap: an XLSX's zip directory is read, nothing is inflated.
    """
    if data.startswith(_ZIP_MAGIC):
        try:
            with zipfile.ZipFile(io.BytesIO(data)) as archive:
                members = archive.infolist()
            shared = sum(m.file_size for m in members if m.filename.lower().endswith("sharedstrings.xml"))
        except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError):
            return len(data)  # the reader refuses it with the reason
        return len(data) + _SHARED_STRINGS_FACTOR * shared
    return _CSV_FACTOR * len(data)
