"""Reading the fields of one export row, collecting every problem instead of stopping at the first.

Shared by the document translators of the file adapters (SPD movements, HRP documents): each asks a
`RowReader` for typed values by canonical field; a value that is missing or does not parse adds a
`RowProblem` naming the field, a stable code and the column title as the file wrote it. The
translator then turns a row with problems into one `Failure` (file, line, column, field), so a
person fixing the export sees everything wrong with the row at once. A value the row is kept
with but the mapping does not know (a department name not under `departments`, not strict)
adds a `RowProblem` to `notes` instead: the row lands, and its note is a dead letter of kind
`note` for the integrator to fix and retry.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from typing import TYPE_CHECKING, TypeVar

from adapters._files.header import normalise_label
from adapters._files.values import ValueParseError, clean_text, parse_amount, parse_date
from adapters.base import Failure, SourceLocation
from schemas._base import DeptRef, Money

if TYPE_CHECKING:
    from collections.abc import Callable, Collection, Mapping
    from decimal import Decimal
    from zoneinfo import ZoneInfo

    from adapters._files.mapping import FileMapping
    from adapters._files.sheet import Record, Sheet

T = TypeVar("T")
Day = date  # for annotations inside RowReader, where `date` names its method

# A date, then a time of day: `2024-06-12 09:31`, `2024/6/12 9:31:05`, `2024-06-12T09:31:05`.
_DATE_TIME = re.compile(r"^(?P<date>.+?)[ T](?P<h>\d{1,2}):(?P<m>\d{2})(?::(?P<s>\d{2})(?:\.\d{1,6})?)?$")
# A count with the item's unit written after it (`10支`, `3 盒`): the unit is not part of the number.
# No leading \s* in the pattern: searched, it backtracked over every run of spaces (quadratic: a
# 20,000-character cell took 24 s); the spaces before the unit are stripped after the match.
_UNIT_SUFFIX = re.compile(r"[\u4e00-\u9fff]{1,3}$")


@dataclass(frozen=True, slots=True)
class RowProblem:
    """One thing wrong with a row: the canonical field, a stable code and a message for people."""

    field: str
    code: str
    reason: str


def local_midnight(day: date, tz: ZoneInfo) -> datetime:
    """A calendar date as business time: midnight at the site, in UTC."""
    return datetime.combine(day, time(), tzinfo=tz).astimezone(UTC)


def parse_moment(text: str, tz: ZoneInfo, extra_formats: Collection[str] = ()) -> datetime:
    """A date or date-and-time cell, naive in the site's zone, as an aware UTC datetime.

    A bare date means midnight at the site. Raises ValueParseError quoting the text.
    """
    value = clean_text(text)
    match = _DATE_TIME.match(value)
    if match is None:
        return local_midnight(parse_date(value, tuple(extra_formats)), tz)
    try:
        day = parse_date(match["date"], tuple(extra_formats))
        moment = time(int(match["h"]), int(match["m"]), int(match["s"] or 0))
    except ValueError as exc:  # ValueParseError included: quote the whole cell, not its date part
        raise ValueParseError(f"{text.strip()!r} is not a valid date and time: {exc}") from exc
    return datetime.combine(day, moment, tzinfo=tz).astimezone(UTC)


class RowReader:
    """Typed access to one record's fields; `problems` collects what is missing or unreadable."""

    def __init__(self, sheet: Sheet, record: Record, mapping: FileMapping) -> None:
        self.sheet, self.record, self.mapping = sheet, record, mapping
        self.problems: list[RowProblem] = []
        self.notes: list[RowProblem] = []  # kept, but with a value the mapping does not know

    def title(self, field: str) -> str:
        """The column title the file uses for `field` (the field name when the file lacks it)."""
        return self.sheet.header.title_of(field) or field

    def has(self, field: str) -> bool:
        """Whether the file has a column for `field` at all."""
        return field in self.sheet.header.columns

    def problem(self, field: str, code: str, reason: str) -> None:
        self.problems.append(RowProblem(field, code, reason))

    def raw(self, field: str) -> str:
        """The cell as written (outer spaces stripped, nothing folded): for codes such as barcodes."""
        return self.sheet.text(self.record, field)

    def text(self, field: str, *, required: bool = False) -> str | None:
        """The cell NFKC-folded and stripped, or None when empty (a problem when `required`)."""
        value = clean_text(self.sheet.text(self.record, field))
        if not value and required:
            if self.has(field):
                self.problem(field, "missing_required", f"{self.title(field)} is empty")
            else:
                names = self.mapping.columns.get(field, [field])
                self.problem(field, "missing_column", f"the file has no {names[0]} column ({field})")
        return value or None

    def parsed(self, field: str, parse: Callable[[str], T], code: str, *, required: bool = False) -> T | None:
        """Parse the cell with `parse`; a ValueParseError becomes a problem with `code`."""
        value = self.text(field, required=required)
        if value is None:
            return None
        try:
            return parse(value)
        except ValueParseError as exc:
            self.problem(field, code, f"{self.title(field)}: {exc}")
            return None

    def date(self, field: str, *, required: bool = False) -> date | None:
        formats = tuple(self.mapping.date_formats)
        return self.parsed(field, lambda v: parse_date(v, formats), "invalid_date", required=required)

    def moment(self, field: str, tz: ZoneInfo, *, required: bool = False) -> datetime | None:
        formats = tuple(self.mapping.date_formats)
        return self.parsed(field, lambda v: parse_moment(v, tz, formats), "invalid_date", required=required)

    def first_date(self, *fields: str, required: bool = False) -> Day | None:
        """The date in the first of `fields` that holds one (a document's own date column, then
        its generic 单据日期); when none does and `required`, a problem on the first present one."""
        return self._first(fields, self.date, required=required)

    def first_moment(self, *fields: str, tz: ZoneInfo, required: bool = False) -> datetime | None:
        """Like `first_date`, for cells that may carry a time of day (scans, charges)."""
        return self._first(fields, lambda f: self.moment(f, tz), required=required)

    def _first(self, fields: tuple[str, ...], read: Callable[[str], T | None], *, required: bool) -> T | None:
        before = len(self.problems)
        for field in fields:
            value = read(field)
            if value is not None:
                return value
        if required and len(self.problems) == before:
            self.text(next((f for f in fields if self.has(f)), fields[0]), required=True)
        return None

    def amount(self, field: str, *, required: bool = False) -> Decimal | None:
        return self.parsed(field, parse_amount, "invalid_amount", required=required)

    def money(self, field: str, *, required: bool = False) -> Money | None:
        amount = self.amount(field, required=required)
        if amount is not None and amount < 0:
            self.problem(field, "invalid_amount", f"{self.title(field)}: {amount} is negative")
            return None
        return None if amount is None else Money(amount=amount, currency=self.mapping.default_currency)

    def quantity(self, field: str, *, required: bool = False, allow_zero: bool = False) -> Decimal | None:
        """A count of units (`10`, `10支`, `1,200`): never negative, zero only when `allow_zero`."""

        def parse(value: str) -> Decimal:
            unit = _UNIT_SUFFIX.search(value)
            number = value if unit is None else value[: unit.start()].rstrip()
            return parse_amount(number, suffixes=(), currency_marks=False)

        count = self.parsed(field, parse, "invalid_quantity", required=required)
        if count is None:
            return None
        if count < 0 or (count == 0 and not allow_zero):
            wanted = "zero or more" if allow_zero else "more than zero"
            self.problem(field, "invalid_quantity", f"{self.title(field)}: {count} is not {wanted}")
            return None
        return count

    def choice(
        self, field: str, table: Mapping[str, T], *, required: bool = False, words: Collection[str] = ()
    ) -> T | None:
        """Look the cell up in `table` (keys are normalised labels); an unknown word fails the row.

        The problem names the word and the known ones (`words`, as the mapping writes them, else
        the table's keys): an unknown code is a dead letter that says which code, so the
        integrator can add it to the mapping.
        """
        value = self.text(field, required=required)
        if value is None:
            return None
        found = table.get(normalise_label(value))
        if found is None:
            known = "、".join(words or sorted(table)) or "(none)"
            self.problem(
                field,
                f"unknown_{field}",
                f"{self.title(field)}: {value!r} is not a known value (the mapping knows: {known})",
            )
        return found

    def department(self, field: str, *, required: bool = False, text: str | None = None) -> DeptRef | None:
        """The department the cell names, through the mapping's code list.

        `text` overrides the cell (a mapping default such as the central store). An unknown name
        is kept by name with a note (`department_unknown`), unless the mapping is strict: then the
        row fails naming it.
        """
        value = text if text is not None else self.text(field, required=required)
        if value is None:
            return None
        entry = self.mapping.department(value)
        if entry is not None:
            return entry.ref()
        if self.mapping.strict_departments:
            self.problem(
                field,
                "unknown_department",
                f"{self.title(field)}: {value!r} is not in the mapping's departments "
                "(add it, or an alias, under departments)",
            )
            return None
        self.notes.append(unknown_department(self.title(field), field, value))
        return DeptRef(name=value)


def unknown_department(title: str, field: str, value: str) -> RowProblem:
    """The note of a row kept with a department name the mapping does not know."""
    return RowProblem(
        field,
        "department_unknown",
        f"{title}: {value!r} is not in the mapping's departments: the row is kept with the department "
        "as the file names it, no code (add it, or an alias, under departments, then retry)",
    )


def row_failure(
    problems: list[RowProblem],
    sheet: Sheet,
    record: Record,
    position: str,
    *,
    excerpt: Mapping[str, str] | None,
) -> Failure:
    """One Failure for a row: every problem in the reason, the first one's column and field."""
    first = problems[0]
    return Failure(
        position=position,
        reason="; ".join(p.reason for p in problems),
        code=first.code,
        location=SourceLocation(
            file=sheet.filename,
            line=record.line,
            column=sheet.header.title_of(first.field),
            column_index=sheet.header.number_of(first.field),
            field=first.field,
        ),
        excerpt=None if excerpt is None else dict(excerpt),
    )


def mapped_cells(sheet: Sheet, record: Record) -> dict[str, str]:
    """The row's cells under mapped columns only: an excerpt that leaves unmapped columns out.

    Exports may carry columns the hub never reads (a patient's name beside a consumption scan);
    keeping only mapped columns keeps those out of dead letters.
    """
    titles = {sheet.header.titles[i] for i in sheet.header.columns.values()}
    return {title: value for title, value in record.values.items() if title in titles and value}
