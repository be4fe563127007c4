"""One entry point for tabular exports: bytes -> Grid, whatever the format.

The format is decided by the bytes, not the file name: people rename `.xlsx` to `.csv` (and the
reverse) when mailing exports around. A zip signature means XLSX; an OLE2 signature means the
old binary XLS, which is refused with what to do instead; anything else is decoded as CSV text.
"""

from __future__ import annotations

from adapters._files.csv_reader import read_csv_rows
from adapters._files.encoding import EncodingChoice, decode_export
from adapters._files.grid import Grid, ReadLimits
from adapters._files.xlsx_reader import read_xlsx_rows
from adapters.errors import MalformedMessage

_ZIP_MAGIC = b"PK\x03\x04"
_OLE2_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"


def read_grid(
    data: bytes,
    *,
    filename: str,
    encoding: EncodingChoice = "auto",
    sheet: str | None = None,
    limits: ReadLimits | None = None,
) -> Grid:
    """Read `data` (CSV or XLSX) into rows; raise MalformedMessage naming `filename` if it cannot."""
    limits = limits or ReadLimits()
    if not data or data.isspace():  # not data.strip(): that copies a whole 100 MB file
        raise MalformedMessage(f"{filename}: the file is empty")
    if data.startswith(_ZIP_MAGIC):
        rows, title = read_xlsx_rows(data, filename=filename, sheet=sheet, limits=limits)
        return Grid(rows=rows, format="xlsx", sheet=title)
    if data.startswith(_OLE2_MAGIC):
        raise MalformedMessage(f"{filename}: old binary XLS is not supported; save it as .xlsx or CSV")
    decoded = decode_export(data, filename=filename, encoding=encoding)
    rows, delimiter = read_csv_rows(decoded.text, filename=filename, limits=limits)
    return Grid(rows=rows, format="csv", encoding=decoded.encoding, delimiter=delimiter)
