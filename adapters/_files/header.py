"""Finding the header row of an export and which column holds which canonical field.

Exports put title rows above the header ("XX市人民医院固定资产台账", "导出日期：2024-06-30"), and
each site names columns its own way (资产编号 / 卡片编号 / 固定资产编号). The header is the first
row, among the first few, whose cells match enough known synonyms.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from adapters.errors import MalformedMessage

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from adapters._files.grid import GridRow

_SPACES = re.compile(r"\s+")
# A unit or note in brackets at the end of a header: 原值(元), 使用年限（年）.
_TRAILING_NOTE = re.compile(r"[(\[][^()\[\]]*[)\]]$")


def normalise_label(text: str) -> str:
    """The comparable form of a header cell: NFKC, no spaces, no `*` required-marks, no unit note."""
    label = _SPACES.sub("", unicodedata.normalize("NFKC", text)).strip("*:")
    return _TRAILING_NOTE.sub("", label).casefold()


@dataclass(frozen=True, slots=True)
class Header:
    """The header: its line(s), its column titles (made unique) and field -> column index.

    `line` is the header's last row (records start below it); `lines` all its rows, top first
    (two or more when group cells sit above sub-titles). `cells` is the label each column was
    matched on; `rows` the header rows as written, to spot a repeated header. `matched` says, per
    field, which synonym matched; `reason` why these rows were taken (for the dry run).
    """

    line: int
    cells: tuple[str, ...]
    titles: tuple[str, ...]
    columns: Mapping[str, int]
    lines: tuple[int, ...] = ()
    rows: tuple[tuple[str, ...], ...] = ()
    matched: Mapping[str, str] = field(default_factory=dict)
    reason: str = ""

    def title_of(self, field: str) -> str | None:
        """The column title as written in the file for a canonical field, if the file has it."""
        index = self.columns.get(field)
        return None if index is None else self.titles[index]

    def number_of(self, field: str) -> int | None:
        """The 1-based column number of a canonical field (A = 1), if the file has it."""
        index = self.columns.get(field)
        return None if index is None else index + 1


def synonym_index(synonyms: Mapping[str, Sequence[str]]) -> dict[str, str]:
    """Normalised synonym -> canonical field. The mapping validator rejects a synonym used twice."""
    return {normalise_label(s): field for field, names in synonyms.items() for s in names}


def match_header(cells: Sequence[str], index: Mapping[str, str]) -> dict[str, int]:
    """Field -> column index for the cells that name a known field (the first column wins)."""
    found: dict[str, int] = {}
    for position, cell in enumerate(cells):
        field = index.get(normalise_label(cell))
        if field is not None and field not in found:
            found[field] = position
    return found


@dataclass(frozen=True, slots=True)
class _Stack:
    """A candidate header of `depth` rows: per column the labels to try, most specific first."""

    labels: tuple[tuple[str, ...], ...]
    titles: tuple[str, ...]


def _stack(rows: Sequence[Sequence[str]]) -> _Stack:
    """Compose header rows into one label list per column.

    A merged cell keeps its text in its first cell only; the cells it covers read empty (in XLSX
    read in streaming mode and in the CSV Excel writes alike). So a cell left empty under a title
    belongs to the title above it (merged vertically), and a title whose row below is filled over
    several columns, the next ones empty in its own row, is a group over them (merged horizontally).
    """
    width = max((len(r) for r in rows), default=0)
    grid = [[(r[i].strip() if i < len(r) else "") for i in range(width)] for r in rows]
    # Fill group cells rightwards, only over columns that have a sub-title below; bottom-up, so
    # a group over groups sees the filled groups under it.
    for depth in reversed(range(len(grid) - 1)):
        upper, lower = grid[depth], grid[depth + 1]
        for i in range(1, width):
            if not upper[i] and upper[i - 1] and lower[i] and lower[i - 1]:
                upper[i] = upper[i - 1]
    labels: list[tuple[str, ...]] = []
    titles: list[str] = []
    for i in range(width):
        column = [grid[d][i] for d in range(len(grid)) if grid[d][i]]
        distinct = list(dict.fromkeys(column))
        # Most specific first (the sub-title), then group + sub joined, then the groups.
        tries = [*reversed(distinct)]
        if len(distinct) > 1:
            tries.insert(1, "".join(distinct))
        labels.append(tuple(tries))
        titles.append(" / ".join(distinct))
    return _Stack(labels=tuple(labels), titles=tuple(titles))


def _match_stack(stack: _Stack, index: Mapping[str, str]) -> tuple[dict[str, int], dict[str, str]]:
    found: dict[str, int] = {}
    matched: dict[str, str] = {}
    for position, tries in enumerate(stack.labels):
        for label in tries:
            field = index.get(normalise_label(label))
            if field is not None:
                if field not in found:
                    found[field], matched[field] = position, label
                break
    return found, matched


def find_header(
    rows: Sequence[GridRow],
    synonyms: Mapping[str, Sequence[str]],
    *,
    filename: str,
    scan_rows: int = 15,
    min_matches: int = 3,
    max_rows: int = 3,
) -> Header:
    """The header: the first row among the first `scan_rows` matching at least `min_matches`
    fields, extended over up to `max_rows` rows when the rows around it together name more
    fields (a two-row header with merged group cells).

    Raises MalformedMessage naming the file, what was looked for and the nearest candidate.
    """
    index = synonym_index(synonyms)
    head = list(rows[:scan_rows])
    best: tuple[int, dict[str, int]] | None = None
    # Every run of 1..max_rows rows is a candidate; the one naming the most fields wins, then the
    # shallower (a title row or a data row next to the header adds no field), then the higher.
    chosen: tuple[tuple[int, int, int], dict[str, int], dict[str, str], _Stack] | None = None
    for start in range(len(head)):
        for depth in range(1, max_rows + 1):
            if start + depth > len(head):
                break
            stack = _stack([cells for _, cells in head[start : start + depth]])
            found, matched = _match_stack(stack, index)
            if depth == 1 and found and (best is None or len(found) > len(best[1])):
                best = (head[start][0], found)
            rank = (-len(found), depth, start)
            if len(found) >= min_matches and (chosen is None or rank < chosen[0]):
                chosen = (rank, found, matched, stack)
    if chosen is not None:
        (_, depth, start), found, matched, stack = chosen
        lines = tuple(line for line, _ in head[start : start + depth])
        if depth == 1:
            reason = f"line {lines[0]}: one header row naming {len(found)} known columns (need {min_matches})"
        else:
            reason = (
                f"lines {lines[0]}-{lines[-1]}: {depth} header rows (merged group or vertically merged "
                f"cells) naming {len(found)} known columns together"
            )
        if lines[0] > 1:
            reason += f"; {lines[0] - 1} title row(s) above"
        return Header(
            line=lines[-1],
            cells=tuple(tries[0] if tries else "" for tries in stack.labels),
            titles=_unique_titles(stack.titles),
            columns=found,
            lines=lines,
            rows=tuple(tuple(cells) for _, cells in head[start : start + depth]),
            matched=matched,
            reason=reason,
        )
    looked_for = ", ".join(names[0] for names in synonyms.values() if names)
    nearest = (
        f"; nearest was line {best[0]} with {len(best[1])} ({', '.join(sorted(best[1]))})" if best else ""
    )
    raise MalformedMessage(
        f"{filename}: no header row in the first {scan_rows} rows: need {min_matches} known columns "
        f"such as {looked_for}{nearest}"
    )


def _unique_titles(cells: Sequence[str]) -> tuple[str, ...]:
    # Two columns titled alike would collide as dict keys in a record; number the later ones.
    seen: dict[str, int] = {}
    titles: list[str] = []
    for position, cell in enumerate(cells, start=1):
        title = cell.strip() or f"(column {position})"
        seen[title] = seen.get(title, 0) + 1
        titles.append(title if seen[title] == 1 else f"{title} ({seen[title]})")
    return tuple(titles)
