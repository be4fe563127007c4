"""CSV text -> grid rows: delimiter sniffing among `,` `;` tab `|`, and person-visible line numbers."""

from __future__ import annotations

import csv
import io
import re
from collections import Counter
from itertools import islice
from typing import TYPE_CHECKING

from adapters._files.grid import GridRow, ReadLimits
from adapters.errors import MalformedMessage

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator

DELIMITERS = (",", "\t", ";", "|")  # order breaks ties: comma is what most exports use
SNIFF_LINES = 40
# A line with its ending (CR LF, CR or LF), as io.StringIO(newline="") yields them.
_LINE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+")


# str.splitlines also breaks at these; the csv module (and _LINE) do not.
_OTHER_BREAKS = ("\x0b", "\x0c", "\x1c", "\x1d", "\x1e", "\x85", "\u2028", "\u2029")
_BLOCK = 1 << 20  # characters split into lines at a time


def _lines(text: str, block: int = _BLOCK) -> Iterator[str]:
    """The lines of `text` one at a time. io.StringIO would copy the whole text into a buffer of
    4 bytes per character first: 400 MB for a 100 MB GBK export.

    Where `text` has no other line break than CR and LF (every export seen), a block of it at a
    time is split by str.splitlines, which gives the same lines as _LINE several times faster."""
    if any(c in text for c in _OTHER_BREAKS):
        return (match.group(0) for match in _LINE.finditer(text))
    return _split(text, block)


def _split(text: str, block: int) -> Iterator[str]:
    start, end = 0, len(text)
    while start < end:
        stop = text.find("\n", start + block)  # a block ends after a LF: never inside a CR LF
        if stop < 0 and end - start > 2 * block:  # a long tail without LF (CR endings): by pattern
            yield from (match.group(0) for match in _LINE.finditer(text, start))
            return
        stop = end if stop < 0 else stop + 1
        yield from text[start:stop].splitlines(keepends=True)
        start = stop


def sniff_delimiter(text: str) -> str:
    """The candidate that splits the most sample lines into the same number (> 1) of fields.

    csv.Sniffer is not used: title rows above the header ("XX医院固定资产台账") and Chinese text
    make its character-frequency guess unstable. Scoring whole parsed records per candidate is
    slower but only looks at the first lines, and quoted fields holding a delimiter are handled.
    """
    sample = "".join(islice((match.group(0) for match in _LINE.finditer(text)), SNIFF_LINES))
    best, best_score = ",", 0
    for delimiter in DELIMITERS:
        try:
            records = csv.reader(io.StringIO(sample, newline=""), delimiter=delimiter, strict=False)
            widths = [len(r) for r in records if len(r) > 1]
        except csv.Error:  # a field over csv's size limit: read_csv_rows names its line
            continue
        if not widths:
            continue
        width, count = Counter(widths).most_common(1)[0]
        score = count * 1000 + width  # consistency first, then the wider split
        if score > best_score:
            best, best_score = delimiter, score
    return best


def read_csv_rows(
    text: str, *, filename: str, delimiter: str | None = None, limits: ReadLimits | None = None
) -> tuple[tuple[GridRow, ...], str]:
    """Parse `text` into `(line, cells)` rows and return them with the delimiter used."""
    chosen = delimiter or sniff_delimiter(text)
    return tuple(iter_csv_rows(text, filename=filename, delimiter=chosen, limits=limits)), chosen


def iter_csv_rows(
    text: str, *, filename: str, delimiter: str, limits: ReadLimits | None = None
) -> Iterator[GridRow]:
    """The `(line, cells)` rows of `text` one at a time; MalformedMessage where a limit is passed.

    `line` is the physical line where the record starts, so a quoted field spanning lines does
    not shift the numbers of the rows below it away from what an editor shows.
    """
    return iter_csv_lines(_lines(text), filename=filename, delimiter=delimiter, limits=limits)


def iter_csv_lines(
    lines: Iterable[str], *, filename: str, delimiter: str, limits: ReadLimits | None = None
) -> Iterator[GridRow]:
    """`iter_csv_rows` over text given a line at a time (each with its ending), e.g. as decoded
    from the bytes while they are read (adapters._files.encoding.text_lines)."""
    limits = limits or ReadLimits()
    reader = csv.reader(lines, delimiter=delimiter, strict=False)
    count = 0
    start = 1
    try:
        for record in reader:
            line, start = start, reader.line_num + 1
            if count >= limits.max_rows:
                raise MalformedMessage(f"{filename}: more than {limits.max_rows} rows (line {line})")
            count += 1
            yield line, _checked(record, filename, line, limits)
    except csv.Error as exc:
        raise MalformedMessage(f"{filename}: line {start}: not readable as CSV: {exc}") from exc


def check_csv_rows(text: str, *, filename: str, delimiter: str, limits: ReadLimits | None = None) -> None:
    """Raise the MalformedMessage `iter_csv_rows` would raise on `text`, keeping nothing: a file is
    checked whole before any of its rows is handed over (a cheaper loop than reading every row)."""
    check_csv_lines(_lines(text), filename=filename, delimiter=delimiter, limits=limits)


def check_csv_lines(
    lines: Iterable[str], *, filename: str, delimiter: str, limits: ReadLimits | None = None
) -> None:
    """`check_csv_rows` over text given a line at a time (as `iter_csv_lines` reads it)."""
    limits = limits or ReadLimits()
    reader = csv.reader(lines, delimiter=delimiter, strict=False)
    max_rows, max_cols, max_chars = limits.max_rows, limits.max_cols, limits.max_cell_chars
    count = 0
    start = 1
    try:
        for record in reader:
            line, start = start, reader.line_num + 1
            if count >= max_rows:
                raise MalformedMessage(f"{filename}: more than {max_rows} rows (line {line})")
            count += 1
            # Within every limit as it comes: `_checked` could only drop trailing cells. Otherwise
            # `_checked` decides (and names the cell).
            if len(record) > max_cols or (record and max(map(len, record)) > max_chars):
                _checked(record, filename, line, limits)
    except csv.Error as exc:
        raise MalformedMessage(f"{filename}: line {start}: not readable as CSV: {exc}") from exc


def _checked(record: list[str], filename: str, line: int, limits: ReadLimits) -> tuple[str, ...]:
    # Trailing empty cells are Excel's padding, not columns: dropping them keeps the width check
    # about real content.
    while record and not record[-1].strip():
        record.pop()
    if len(record) > limits.max_cols:
        raise MalformedMessage(f"{filename}: line {line}: {len(record)} columns, more than {limits.max_cols}")
    if not record or max(map(len, record)) <= limits.max_cell_chars:
        return tuple(record)  # the usual row: one pass in C, no cell over the limit
    for index, cell in enumerate(record, start=1):
        if len(cell) > limits.max_cell_chars:
            raise MalformedMessage(
                f"{filename}: line {line}, column {index}: "
                f"cell longer than {limits.max_cell_chars} characters"
            )
    return tuple(record)
