"""An export read end to end: grid -> header -> records, with the non-data rows told apart.

Every row below the header is one of: blank (dropped, not a unit), a summary row (合计/小计/总计,
or totals under a blank key), a footer note (制表人：…), a repeated header (multi-page exports
print it again), or data. Only data rows are translated; the others are reported as skipped so a
reconciliation can account for every line.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from itertools import chain, islice
from typing import TYPE_CHECKING, Literal

from adapters._files.header import Header, find_header, normalise_label
from adapters._files.tabular import stream_grid
from adapters._files.values import clean_text, looks_numeric

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping, Sequence

    from adapters._files.grid import Grid, ReadLimits
    from adapters._files.mapping import FileMapping

RowKind = Literal["data", "summary", "footer", "repeated_header"]
_MARKER_CELLS = 3  # summary/footer words are looked for in the first few filled cells only


@dataclass(frozen=True, slots=True)
class Record:
    """One row below the header: its line and its cells keyed by the column titles of the file."""

    line: int
    kind: RowKind
    values: Mapping[str, str]


@dataclass(frozen=True, slots=True)
class Sheet:
    """A read export: how it was read, its header, and its records (blank rows dropped).

    A streamed sheet (`stream_sheet`) has no records here (they are handed over one by one) and
    only the rows down to the header in `grid.rows`.
    """

    filename: str
    grid: Grid
    header: Header
    records: tuple[Record, ...]

    def text(self, record: Record, field: str) -> str:
        """The stripped cell text of `field` in `record`, or "" when the file has no such column."""
        title = self.header.title_of(field)
        return "" if title is None else record.values.get(title, "").strip()

    def data(self) -> Iterator[Record]:
        return (r for r in self.records if r.kind == "data")


def read_sheet(
    data: bytes, *, filename: str, mapping: FileMapping, limits: ReadLimits | None = None
) -> Sheet:
    """Decode and parse `data`, locate the header with the mapping's synonyms, classify rows.

    Raises MalformedMessage (naming `filename`) for an unreadable file or one without a header.
    """
    sheet, records = stream_sheet(data, filename=filename, mapping=mapping, limits=limits)
    return replace(sheet, records=tuple(records))


def stream_sheet(
    data: bytes, *, filename: str, mapping: FileMapping, limits: ReadLimits | None = None
) -> tuple[Sheet, Iterator[Record]]:
    """`read_sheet` row by row: the sheet down to its header now, its records as they are taken.

    The header is looked for in the first `mapping.header.scan_rows` rows only, so those are all
    that is read before the records start.
    """
    sheet, rows = stream_cells(data, filename=filename, mapping=mapping, limits=limits)
    return sheet, (record_of(line, cells, sheet.header, mapping) for line, cells in rows)


def stream_cells(
    data: bytes, *, filename: str, mapping: FileMapping, limits: ReadLimits | None = None
) -> tuple[Sheet, Iterator[tuple[int, Sequence[str]]]]:
    """`stream_sheet` before its rows are classified: the non-blank rows below the header as
    `(line, cells)`, for a source that recognises most of its rows by shape (`record_of` for the rest)."""
    grid, rows = stream_grid(
        data, filename=filename, encoding=mapping.encoding, sheet=mapping.sheet, limits=limits
    )
    head = list(islice(rows, mapping.header.scan_rows))
    header = find_header(
        head,
        mapping.columns,
        filename=filename,
        scan_rows=mapping.header.scan_rows,
        min_matches=mapping.header.min_matches,
    )
    below = header.line
    # A row whose first cell has content (nearly every row) is not blank: no walk of its cells.
    cells = (
        (line, row)
        for line, row in chain(head, rows)
        if line > below and row and (row[0].strip() or any(c.strip() for c in row))
    )
    sheet = Sheet(filename=filename, grid=replace(grid, rows=tuple(head)), header=header, records=())
    return sheet, cells


def record_of(line: int, cells: Sequence[str], header: Header, mapping: FileMapping) -> Record:
    """One row below the header as a Record: its cells by column title, and its kind."""
    return _record(line, cells, header, mapping)


def _record(line: int, cells: Sequence[str], header: Header, mapping: FileMapping) -> Record:
    values = {title: cells[i] if i < len(cells) else "" for i, title in enumerate(header.titles)}
    # Cells right of the last titled column are kept (for people reading a failure), not mapped.
    values.update({f"(column {i + 1})": c for i, c in enumerate(cells) if i >= len(header.titles) and c})
    return Record(line=line, kind=_kind(cells, header, mapping), values=values)


def _kind(cells: Sequence[str], header: Header, mapping: FileMapping) -> RowKind:
    cleaned = [clean_text(c) for c in cells]
    if _repeats_header(cells, header):
        return "repeated_header"
    first = [c for c in cleaned if c][:_MARKER_CELLS]
    if any(marker in cell for cell in first for marker in mapping.skip_markers):
        return "footer"
    positions = [header.columns[f] for f in mapping.required if f in header.columns]
    key_cells = [cleaned[i] for i in positions if i < len(cleaned)]
    # A marker counts only when no key cell holds anything but the marker itself: a device
    # named 总计量泵 with a card number is data, not a total.
    marked = any(marker in cell for cell in first for marker in mapping.summary_markers)
    if marked and all(not c or any(m in c for m in mapping.summary_markers) for c in key_cells):
        return "summary"
    if not any(key_cells) and all(looks_numeric(c) for c in cleaned if c):
        return "summary"  # totals under a blank key: a summary row without a label
    return "data"


def _repeats_header(cells: Sequence[str], header: Header) -> bool:
    # Multi-page exports print the header again, every row of it. Cheap test first (this runs for
    # every row of every file): the row's first filled cell against each header row's.
    first = normalise_label(next((c for c in cells if c.strip()), ""))
    for row in header.rows or (header.cells,):
        head = next((c for c in row if c.strip()), None)
        if head is not None and normalise_label(head) == first and _labels(cells) == _labels(row):
            return True
    return False


def _labels(cells: Sequence[str]) -> list[str]:
    return [normalise_label(c) for c in cells if c.strip()]
