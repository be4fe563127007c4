"""Finding the header row of an export and which column holds which canonical field.

Exports put title rows above the header ("XX市人民医院固定资产台账", "导出日期：2024-06-30"), and
each site names columns its own way (资产编号 / 卡片编号 / 固定资产编号). The header is the first
row, among the first few, whose cells match enough known synonyms.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
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
    """The header row: its line, its column titles (made unique) and field -> column index."""

    line: int
    cells: tuple[str, ...]
    titles: tuple[str, ...]
    columns: Mapping[str, int]

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


def find_header(
    rows: Sequence[GridRow],
    synonyms: Mapping[str, Sequence[str]],
    *,
    filename: str,
    scan_rows: int = 15,
    min_matches: int = 3,
) -> Header:
    """The first row among the first `scan_rows` matching at least `min_matches` fields.

    Raises MalformedMessage naming the file, what was looked for and the nearest candidate.
    """
    index = synonym_index(synonyms)
    best: tuple[int, dict[str, int]] | None = None
    for line, cells in rows[:scan_rows]:
        found = match_header(cells, index)
        if len(found) >= min_matches:
            return Header(line=line, cells=tuple(cells), titles=_unique_titles(cells), columns=found)
        if found and (best is None or len(found) > len(best[1])):
            best = (line, found)
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
