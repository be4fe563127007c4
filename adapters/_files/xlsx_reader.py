"""XLSX sheet -> grid rows, with typed cells rendered to the text a person sees.

Opened with openpyxl in read_only + data_only mode (cached formula results, streamed rows). The
zip is checked by zipguard before openpyxl sees it; openpyxl parses the XML through defusedxml
when it is installed (it is a dependency of the hub), which covers entity-expansion attacks.
"""

from __future__ import annotations

import io
import re
import warnings
import zipfile
import zlib
from datetime import date, datetime, time
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from adapters._files.grid import GridRow, ReadLimits
from adapters._files.zipguard import check_zip
from adapters.errors import MalformedMessage

if TYPE_CHECKING:
    from collections.abc import Iterator

# What openpyxl lets escape on a broken workbook, found by fuzzing (tests/reliability): a corrupt
# deflate stream (zlib.error), malformed part XML (ElementTree's ParseError is a SyntaxError), an
# attribute its models do not know (TypeError), a missing part or sheet (KeyError, IndexError).
_UNREADABLE = (
    zipfile.BadZipFile,
    zlib.error,
    SyntaxError,
    EOFError,
    KeyError,
    IndexError,
    AttributeError,
    TypeError,
    ValueError,
    OSError,
)

# Above this magnitude a float no longer holds every integer exactly: render it as a decimal.
_EXACT_INT_LIMIT = 10**15
# A <row> start tag (any namespace prefix) and its row number, when it carries one.
_ROW_TAG = re.compile(rb"<(?:\w+:)?row(?=[\s>/])([^>]*)>")
_ROW_NUMBER = re.compile(rb'\sr="(\d{1,9})"')
_SCAN_BYTES = 1 << 20


def cell_text(value: Any) -> str:  # noqa: PLR0911 - one return per cell type reads best
    """Render an openpyxl cell value as text the value parsers accept.

    Floats go through their 15 significant digits (Excel's precision: what it stored in the XML
    and shows) and then Decimal, so 12345.6 stays `12345.6` and never becomes 12345.600000000000364.
    """
    if value is None:
        return ""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if value.is_integer() and abs(value) < _EXACT_INT_LIMIT:
            return str(int(value))
        # Excel keeps 15 significant digits: a formula's 0.30000000000000004 is the 0.3 it shows.
        return format(Decimal(format(value, ".15g")), "f")
    if isinstance(value, datetime):
        return value.date().isoformat() if value.time() == time() else value.isoformat(sep=" ")
    if isinstance(value, date | time):
        return value.isoformat()
    return str(value).strip()


def read_xlsx_rows(
    data: bytes, *, filename: str, sheet: str | None = None, limits: ReadLimits | None = None
) -> tuple[tuple[GridRow, ...], str]:
    """Read one sheet (the first, unless `sheet` names one) and return its rows and its title."""
    title, rows = iter_xlsx_rows(data, filename=filename, sheet=sheet, limits=limits)
    return tuple(rows), title


def iter_xlsx_rows(
    data: bytes, *, filename: str, sheet: str | None = None, limits: ReadLimits | None = None
) -> tuple[str, Iterator[GridRow]]:
    """Open one sheet (the first, unless `sheet` names one): its title, and its rows as they are read.

    The workbook is opened (and its zip checked) now; the sheet XML is parsed as the rows are
    taken, so only the shared strings and the row at hand are in memory, never the whole sheet.
    """
    # Imported here: openpyxl (and the Pillow it pulls in) is ~15 MB of RSS that every process
    # importing the tabular adapters paid at start, for the XLSX files only some sites send.
    import openpyxl  # noqa: PLC0415

    limits = limits or ReadLimits()
    check_zip(data, filename=filename, limits=limits)
    try:
        with warnings.catch_warnings():
            # openpyxl warns about styles and extensions it ignores; they do not affect values.
            warnings.simplefilter("ignore", UserWarning)
            workbook = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except _UNREADABLE as exc:
        raise MalformedMessage(f"{filename}: not a readable XLSX workbook: {_reason(exc)}") from exc
    if sheet is not None and sheet not in workbook.sheetnames:
        workbook.close()
        raise MalformedMessage(f"{filename}: no sheet named {sheet!r} (sheets: {workbook.sheetnames})")
    try:
        worksheet = workbook[sheet] if sheet is not None else workbook.worksheets[0]
        # The <dimension> tag is written by the producing program and may be wrong or absurd
        # (A1:XFD1048576); ignore it so rows are only as wide as their last real cell.
        worksheet.reset_dimensions()
        # The sheet's part name: openpyxl keeps it on the read-only worksheet only.
        rows = _counted_rows(data, worksheet._worksheet_path)
        if rows > limits.max_rows:
            # Refused before a row is translated: a file over the limit is never half-processed.
            workbook.close()
            raise MalformedMessage(f"{filename}: more than {limits.max_rows} rows ({rows:,})")
        values = worksheet.iter_rows(min_row=1, values_only=True)
    except _UNREADABLE as exc:
        workbook.close()
        raise MalformedMessage(f"{filename}: sheet XML is not readable: {_reason(exc)}") from exc
    return str(worksheet.title), _rows(workbook, values, filename, limits)


def _counted_rows(data: bytes, part: str) -> int:
    """How many rows the sheet part holds (the highest row number, or the <row> count without them).

    A streamed scan of the part's bytes (zipguard has bounded its size): about a second for 100 MB
    of sheet XML, against a minute to read the rows, so an over-limit sheet is refused up front.
    """
    highest = count = 0

    def scan(text: bytes) -> None:
        nonlocal highest, count
        for tag in _ROW_TAG.finditer(text):
            count += 1
            if number := _ROW_NUMBER.search(tag.group(1)):
                highest = max(highest, int(number.group(1)))

    tail = b""
    with zipfile.ZipFile(io.BytesIO(data)) as archive, archive.open(part.lstrip("/")) as stream:
        while chunk := stream.read(_SCAN_BYTES):
            text = tail + chunk
            cut = text.rfind(b"<")  # a tag cut by the chunk's end is scanned with the next chunk
            if cut > len(text) - 4096:
                text, tail = text[:cut], text[cut:]
            else:
                tail = b""
            scan(text)
    scan(tail)
    return max(highest, count)


def _rows(workbook: Any, values: Any, filename: str, limits: ReadLimits) -> Iterator[GridRow]:
    try:
        for line, raw in enumerate(values, start=1):
            if line > limits.max_rows:
                raise MalformedMessage(f"{filename}: more than {limits.max_rows} rows")
            cells = [cell_text(v) for v in raw]
            while cells and not cells[-1]:
                cells.pop()
            if len(cells) > limits.max_cols:
                raise MalformedMessage(
                    f"{filename}: row {line}: {len(cells)} columns, more than {limits.max_cols}"
                )
            yield line, tuple(cells)
    except _UNREADABLE as exc:
        raise MalformedMessage(f"{filename}: sheet XML is not readable: {_reason(exc)}") from exc
    finally:
        workbook.close()


def _reason(exc: BaseException) -> str:
    return str(exc) or type(exc).__name__
